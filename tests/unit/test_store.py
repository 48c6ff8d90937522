"""The store stays bounded and answers the panes' questions correctly."""

from __future__ import annotations

import tracemalloc

import pytest

from console.engine.store import Store
from probes.samples import Sample


def test_a_stream_eight_times_the_capacity_stays_bounded() -> None:
    """400k Samples into 50 series of 1000 (capacity 50k): after the first 100k, memory stays flat.

    (It was a million; under tracemalloc that took 20 s of the suite and showed nothing more.)
    """
    store = Store(per_series=1000, max_series=50)
    tracemalloc.start()
    try:
        for i in range(100_000):
            store.add(Sample("tcp", f"t{i % 50}", float(i), {"rtt_ms": 1.0}))
        _, after_warmup = tracemalloc.get_traced_memory()
        for i in range(300_000):
            store.add(Sample("tcp", f"t{i % 50}", float(i), {"rtt_ms": 1.0}))
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.total_added == 400_000
    assert len(store) == 50 * 1000  # every series holds only its newest 1000
    assert len(store.keys()) == 50
    assert current < after_warmup * 1.1  # flat: the last 300k samples cost nothing extra


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


def _http(ts: float, i: int) -> Sample:
    """An HTTP Sample as the probe writes it: 18 fields, most of them needed only while it is recent."""
    fields: dict[str, object] = {
        "status": 200 if i % 10 else 503, "total_ms": 5.0 + i % 7, "dns_ms": 0.1, "connect_ms": 0.3, "tls_ms": None,
        "ttfb_ms": 4.0, "transfer_ms": 0.2, "bytes": 1234, "url": f"http://127.0.0.1:8080/p{i}",
        "final_url": f"http://127.0.0.1:8080/p{i}", "http_version": "HTTP/1.1", "reason": "OK", "redirects": [],
        "server": f"nginx/1.{i}", "address": "127.0.0.1", "timeouts": {"connect": 5.0, "read": 5.0},
        "challenge_redirect": None, "waf_hint": None}
    if i % 13 == 0:
        return Sample("http", "web", ts, {}, error="read-timeout", message=f"ReadTimeout after 5 s (#{i})")
    return Sample("http", "web", ts, fields)  # type: ignore[arg-type]


def test_target_samples_older_than_two_minutes_keep_their_figures_and_errors_only() -> None:
    from console.engine.store import FULL_DETAIL_S

    store = Store()
    whole = Store(full_detail_s=None)
    for i in range(1200):  # 20 minutes at 1 Hz
        store.add(_http(1000.0 + i, i))
        whole.add(_http(1000.0 + i, i))
    ring, kept = store.series(("local", "http", "web")), whole.series(("local", "http", "web"))
    newest = ring[-1].ts
    for thin_one, full_one in zip(ring, kept, strict=True):
        assert (thin_one.ts, thin_one.ok, thin_one.error, thin_one.message) == \
            (full_one.ts, full_one.ok, full_one.error, full_one.message)
        assert thin_one.fields.get("total_ms") == full_one.fields.get("total_ms")
        assert thin_one.fields.get("status") == full_one.fields.get("status")
        if thin_one.ts >= newest - FULL_DETAIL_S:
            assert thin_one.fields == full_one.fields  # recent: every field, for the rules and the panes
        else:
            assert "server" not in thin_one.fields and "url" not in thin_one.fields
    key = ("local", "http", "web")
    for seconds in (60.0, 900.0, None):  # the panes' minute, fix validation's 15 minutes, everything
        assert store.stats(key, field="total_ms", seconds=seconds, now=newest) == \
            whole.stats(key, field="total_ms", seconds=seconds, now=newest)


def test_an_hour_of_five_http_targets_costs_a_fraction_of_its_whole_samples() -> None:
    def cost(full_detail_s: float | None) -> int:
        tracemalloc.start()
        try:
            store = Store(full_detail_s=full_detail_s)
            for i in range(3600):
                for t in range(5):
                    sample = _http(1000.0 + i, i)
                    store.add(Sample(sample.kind, f"web{t}", sample.ts, dict(sample.fields),
                                     error=sample.error, message=sample.message))
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    whole, thinned = cost(None), cost(120.0)
    print(f"an hour of 5 HTTP targets: {whole / 1e6:.1f} MB whole, {thinned / 1e6:.1f} MB thinned")
    assert thinned < whole / 2
