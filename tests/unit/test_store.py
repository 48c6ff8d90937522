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
    assert (everything.count, everything.ok) == (6, 5)
    assert everything.p99 is not None and everything.p99 > 900
    assert store.last(key) is not None and store.last(key).error == "timeout"


def test_window_excludes_old_samples() -> None:
    store = Store()
    for ts in (1.0, 50.0, 95.0, 99.0):
        store.add(Sample("tcp", "x:1", ts, {"rtt_ms": ts}))
    assert [s.ts for s in store.window(("local", "tcp", "x:1"), 10, now=100.0)] == [95.0, 99.0]
    assert store.values(("local", "tcp", "x:1"), "rtt_ms", 10, now=100.0) == [95.0, 99.0]
