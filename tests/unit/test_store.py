"""The store stays bounded and answers the panes' questions correctly."""

from __future__ import annotations

import tracemalloc

import pytest

from console.engine.store import Store
from probes.samples import Sample


def test_million_samples_stay_bounded() -> None:
    store = Store(per_series=1000, max_series=50)
    tracemalloc.start()
    try:
        for i in range(200_000):
            store.add(Sample("tcp", f"t{i % 50}", float(i), {"rtt_ms": 1.0}))
        _, after_warmup = tracemalloc.get_traced_memory()
        for i in range(800_000):
            store.add(Sample("tcp", f"t{i % 50}", float(i), {"rtt_ms": 1.0}))
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.total_added == 1_000_000
    assert len(store) == 50 * 1000  # every series holds only its newest 1000
    assert len(store.keys()) == 50
    assert current < after_warmup * 1.1  # flat: the last 800k samples cost nothing extra


def test_series_beyond_the_limit_evict_the_least_recently_updated() -> None:
    store = Store(per_series=10, max_series=3)
    for target in ("a", "b", "c"):
        store.add(Sample("tcp", target, 1.0))
    store.add(Sample("tcp", "a", 2.0))  # "a" is fresh again, "b" is now the oldest
    store.add(Sample("tcp", "d", 3.0))
    assert sorted(k[2] for k in store.keys(kind="tcp")) == ["a", "c", "d"]


def test_stats_over_a_window() -> None:
    store = Store()
    now = 1000.0
    key = ("local", "tcp", "db:5432")
    store.add(Sample("tcp", "db:5432", now - 600, {"rtt_ms": 3.0, "cold": True}))  # never in the percentiles
    store.add(Sample("tcp", "db:5432", now - 500, {"rtt_ms": 999.0}))  # outside a 60 s window
    for i, rtt in enumerate([10.0, 12.0, 11.0, 15.0]):
        store.add(Sample("tcp", "db:5432", now - 10 + i, {"rtt_ms": rtt}))
    store.add(Sample("tcp", "db:5432", now - 1, {}, error="timeout", message="no result within 2 s"))

    recent = store.stats(key, seconds=60, now=now)
    assert (recent.count, recent.ok) == (5, 4)
    assert recent.loss_pct == pytest.approx(20.0)
    assert recent.last == 15.0
    assert recent.p50 == pytest.approx(11.5)
    assert recent.jitter == pytest.approx(0.41845703125)
    assert recent.last_error == "timeout"
    assert recent.last_message == "no result within 2 s"

    everything = store.stats(key, seconds=None)
    assert (everything.count, everything.ok) == (7, 6)
    assert everything.cold_ms == 3.0 and recent.cold_ms is None
    assert everything.p99 is not None and everything.p99 > 900
    assert store.last(key) is not None and store.last(key).error == "timeout"


def test_window_excludes_old_samples() -> None:
    store = Store()
    for ts in (1.0, 50.0, 95.0, 99.0):
        store.add(Sample("tcp", "x:1", ts, {"rtt_ms": ts}))
    assert [s.ts for s in store.window(("local", "tcp", "x:1"), 10, now=100.0)] == [95.0, 99.0]
    assert store.values(("local", "tcp", "x:1"), "rtt_ms", 10, now=100.0) == [95.0, 99.0]


def test_a_cold_start_stays_out_of_the_percentiles() -> None:
    """The demo's healthy backend: 4 ms answers after a 190 ms first request (the console starting up)."""
    store = Store()
    key = ("local", "http", "http://127.0.0.1:8001/health")
    now = 1000.0
    store.add(Sample("http", key[2], now - 20, {"total_ms": 190.0, "cold": True}))
    only_cold = store.stats(key, "total_ms", seconds=60, now=now)
    assert only_cold.last == 190.0 and only_cold.cold_ms == 190.0  # shown as the last value, marked cold
    assert (only_cold.p50, only_cold.p95, only_cold.p99, only_cold.mean) == (None, None, None, None)
    for i in range(1, 20):
        store.add(Sample("http", key[2], now - 20 + i, {"total_ms": 4.0 + (i % 3) * 0.5}))
    warm = store.stats(key, "total_ms", seconds=60, now=now)
    assert (warm.count, warm.ok, warm.loss_pct) == (20, 20, 0.0)  # still an attempt that counts
    assert warm.p95 is not None and warm.p95 <= 5.0 and warm.p99 is not None and warm.p99 <= 5.0
    assert warm.cold_ms == 190.0
    assert 190.0 not in store.values(key, "total_ms", seconds=60, now=now, include_cold=False)
    assert store.is_cold(store.window(key)[0]) and not store.is_cold(store.window(key)[1])


async def test_a_probe_streams_first_measurement_is_marked_cold_and_only_that() -> None:
    """probes.runtime.scheduled marks the first tick's Samples, so a recording or an agent carries the mark."""
    from probes.runtime import COLD_FIELD, scheduled

    answers = iter([190.0, 4.0, 4.5])

    async def measure() -> Sample:
        return Sample("http", "u", 0.0, {"total_ms": next(answers)})

    got = [s async for s in scheduled(measure, kind="http", target="u", interval=0.0, timeout=1.0, count=3)]
    assert [s.fields.get(COLD_FIELD) for s in got] == [True, None, None]
    store = Store()
    for i, sample in enumerate(got):
        store.add(Sample(sample.kind, sample.target, 100.0 + i, sample.fields))
    assert store.stats(("local", "http", "u"), "total_ms", seconds=None).p99 == pytest.approx(4.495)  # 190 left out
