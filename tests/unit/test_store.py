"""The store stays bounded and answers the panes' questions correctly."""

from __future__ import annotations

import tracemalloc

import pytest

from console.engine.store import Store
from probes.samples import JSONValue, Sample


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
    assert recent.newest_failed  # ``last`` (15.0) is an older success, not the newest word

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
    assert not only_cold.newest_failed
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


def _five_targets_for_an_hour(store: Store, seconds: int = 3600) -> None:
    """Five HTTP targets at 1 Hz (every 13th a timeout with its own message), and a DNS layer with its rcode."""
    for i in range(seconds):
        for t in range(5):
            sample = _http(1000.0 + i, i + t)
            store.add(Sample(sample.kind, f"web{t}", sample.ts, dict(sample.fields), error=sample.error,
                             message=sample.message))
        rcode = "NXDOMAIN" if i % 17 == 0 else "NOERROR"
        store.add(Sample("dns", "web0", 1000.0 + i, {"time_ms": 0.4 + i % 3, "rcode": rcode, "addresses": ["10.0.0.1"]},
                         error=rcode.lower() if rcode != "NOERROR" else None,
                         message=f"{rcode} for web0 from 127.0.0.53" if rcode != "NOERROR" else None))


def test_an_hours_old_history_costs_tens_of_bytes_a_sample() -> None:
    """After the first two minutes every new Sample only adds a thinned one: it must cost ~30 bytes, not ~300.

    Measured from minute 10 to minute 60, when the whole Samples of the last two minutes are a
    fixed cost; the error messages (a different one every 13th Sample) are in the figure.
    """
    store = Store()
    tracemalloc.start()
    try:
        _five_targets_for_an_hour(store, 600)
        at_ten_minutes = tracemalloc.get_traced_memory()[0]
        for i in range(600, 3600):  # the same feed on, without starting it again
            for t in range(5):
                sample = _http(1000.0 + i, i + t)
                store.add(Sample(sample.kind, f"web{t}", sample.ts, dict(sample.fields), error=sample.error,
                                 message=sample.message))
            store.add(Sample("dns", "web0", 1000.0 + i, {"time_ms": 0.4, "rcode": "NOERROR", "addresses": []}))
        at_an_hour = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    added = 3000 * 6
    per_sample = (at_an_hour - at_ten_minutes) / added
    print(f"thinned history: {per_sample:.1f} bytes a Sample")
    assert len(store) == 6 * 3600
    assert per_sample < 64


def test_windows_over_old_history_read_what_the_whole_samples_said() -> None:
    """Every query over an hour-old history answers as a store that keeps every Sample whole."""
    from console.engine.store import THIN_FIELDS

    store, whole = Store(), Store(full_detail_s=None)
    _five_targets_for_an_hour(store)
    _five_targets_for_an_hour(whole)
    now = 1000.0 + 3599
    for key in whole.keys(kind=None):
        field = "time_ms" if key[1] == "dns" else "total_ms"
        for seconds in (60.0, 300.0, 900.0, 3600.0, None):
            got, kept = store.window(key, seconds, now), whole.window(key, seconds, now)
            assert [(s.kind, s.target, s.host, s.ts, s.error, s.message) for s in got] == \
                [(s.kind, s.target, s.host, s.ts, s.error, s.message) for s in kept]
            for thin_one, full_one in zip(got, kept, strict=True):
                wanted = {k: v for k, v in full_one.fields.items() if k in THIN_FIELDS}
                assert thin_one.fields == wanted or thin_one.fields == full_one.fields
                assert [type(v) for v in thin_one.fields.values()] == \
                    [type(full_one.fields[k]) for k in thin_one.fields]  # 200 stays an int, "NOERROR" a str
            assert store.stats(key, field, seconds, now) == whole.stats(key, field, seconds, now)
            assert store.values(key, field, seconds, now) == whole.values(key, field, seconds, now)
        ring, full_ring = store.series(key), whole.series(key)
        assert len(ring) == len(full_ring) == 3600
        assert [s.ts for s in reversed(ring)][:5] == [s.ts for s in reversed(full_ring)][:5]
        assert (ring[0].ts, ring[-1], ring[1:3][1].ts) == (full_ring[0].ts, full_ring[-1], full_ring[2].ts)
    assert sum(1 for _ in store) == sum(1 for _ in whole)
    oldest_failure = next(s for s in store.window(("local", "http", "web0")) if not s.ok)
    assert (oldest_failure.ts, oldest_failure.error, oldest_failure.message) == \
        (1000.0, "read-timeout", "ReadTimeout after 5 s (#0)")


def test_a_ring_that_drops_its_oldest_keeps_the_rest_in_order() -> None:
    """A short ring of thinned Samples: the oldest leave one by one, the others keep their content."""
    def fields(i: int) -> dict[str, JSONValue]:
        if i % 7 == 0:
            return {}
        if i % 11 == 0:  # a value columns cannot hold: that Sample is kept as an object
            return {"rtt_ms": float(i), "status": [i, "odd"]}
        return {"rtt_ms": float(i), "cold": i == 0, "status": i}

    store = Store(per_series=700, full_detail_s=10.0)
    for i in range(5000):
        store.add(Sample("tcp", "db", float(i), fields(i),
                         error=None if i % 7 else "refused", message=None if i % 7 else f"refused #{i}"))
    ring = store.window(("local", "tcp", "db"))
    assert [s.ts for s in ring] == [float(i) for i in range(4300, 5000)]
    for sample in ring:
        i = int(sample.ts)
        assert (sample.error, sample.message) == ((None, None) if i % 7 else ("refused", f"refused #{i}"))
        assert sample.fields == fields(i)


def _conns(ts: float, i: int) -> Sample:
    return Sample("conns", "", ts, {
        "source": "netlink", "total": 100 + i, "by_state": {"tcp:ESTAB": 3 + i % 5, "tcp:LISTEN": 4},
        "listeners": [{"proto": "tcp", "local": f"0.0.0.0:{8000 + n}", "pid": n, "process": "nginx"}
                      for n in range(20)],
        "ephemeral_pct": 85.0 if i % 50 == 0 else 1.0, "conntrack_count": 10 + i, "conntrack_max": 262144,
        "fd_top": [{"pid": 1, "name": "app", "fds": 900, "limit": 1024, "pct": 87.9}] if i % 60 == 0 else []})


def _pools(ts: float, i: int) -> Sample:
    return Sample("pools", "", ts, {
        "groups": [{"label": f"app[{n}] → 10.0.0.5:5432", "pid": n, "open": 10 + i % 9, "active": i % 9}
                   for n in range(30)],
        "groups_total": 30,
        "gauges": [{"name": "db", "used": 10 + i % 9, "max": 18, "util_pct": 100.0 * (10 + i % 9) / 18}],
        "active_ms": 1000, "growth_window_s": 60.0})


def test_host_history_keeps_what_its_readers_read() -> None:
    """Five minutes of system, conns and pools Samples: the old ones shrink, every reader's answer stays."""
    from console.engine.store import HOST_FULL_DETAIL
    from console.incident import alerts
    from console.incident.classify import classify, link_evidence
    from console.incident.report import rule_windows
    from console.incident.validate import validate

    def feed(store: Store) -> None:
        for i in range(300):
            ts = 1000.0 + i
            top: list[JSONValue] = [{"pid": n, "name": "x" * 40} for n in range(10)]
            store.add(Sample("system", "", ts, {"load1": 0.5, "top": top}))
            store.add(_conns(ts, i))
            store.add(_pools(ts, i))
            store.add(Sample("tcp", "10.0.0.5:5432", ts, {"rtt_ms": 1.0 + i % 4}))

    def memory_of(store: Store) -> int:
        tracemalloc.start()
        try:
            feed(store)
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    store, whole = Store(clock=lambda: 1299.0), Store(clock=lambda: 1299.0, full_detail_s=None)
    thinned, kept = memory_of(store), memory_of(whole)
    print(f"5 minutes of host Samples: {kept / 1e6:.2f} MB whole, {thinned / 1e6:.2f} MB thinned")
    assert thinned < kept / 3

    for kind in ("system", "conns", "pools"):
        key = ("local", kind, "")
        assert [s.ts for s in store.window(key, 600.0)] == [s.ts for s in whole.window(key, 600.0)]
        assert store.window(key, 600.0)[-HOST_FULL_DETAIL:] == whole.window(key, 600.0)[-HOST_FULL_DETAIL:]
        assert "groups" not in store.window(key)[0].fields and "top" not in store.window(key)[0].fields
    # The readers of older host Samples: paste-error linking, the alert rules, fix validation.
    for text in ("connect: cannot assign requested address", "too many open files",
                 "sorry, too many clients already", "pool exhausted: timeout waiting for connection"):
        assert link_evidence(classify(text), store).to_dict() == link_evidence(classify(text), whole).to_dict()
    bad, good = (rule_windows(s.window(k), None) for s in (store, whole) for k in [("local", "conns", "")])
    assert [r.to_dict() for r in alerts.build_rules("x", *bad).rules] == \
        [r.to_dict() for r in alerts.build_rules("x", *good).rules]
    pools = [store.window(("local", kind, "")) for kind in ("pools", "tcp")]
    pools_whole = [whole.window(("local", kind, "")) for kind in ("pools", "tcp")]
    assert validate(pools[0] + pools[1], 1150.0, 1000.0, 1299.0).to_dict() == \
        validate(pools_whole[0] + pools_whole[1], 1150.0, 1000.0, 1299.0).to_dict()


def test_a_pool_that_was_full_minutes_ago_still_links_to_a_pasted_error() -> None:
    """The one reader that sees the thinning: a pasted error's example quotes a hit's first fields,
    and an old pools hit no longer has its groups, so the example quotes its gauges (the full one)."""
    from console.incident.classify import classify, link_evidence

    store, whole = Store(clock=lambda: 1299.0), Store(clock=lambda: 1299.0, full_detail_s=None)
    for i in range(300):
        sample = _pools(1000.0 + i, i if i < 100 else 0)  # full (i % 9 == 8) only in the first 100 s
        store.add(sample)
        whole.add(sample)
    got, kept = (link_evidence(classify("sorry, too many clients already"), s).evidence for s in (store, whole))
    assert [(e.kind, e.matched, e.total) for e in got] == [(e.kind, e.matched, e.total) for e in kept] == \
        [("pools", 11, 300)]
    assert kept[0].example.startswith("groups=[{'label': 'app[0]")
    assert got[0].example.startswith("groups_total=30, gauges=[{'name': 'db', 'used': 18, 'max': 18, "
                                     "'util_pct': 100.0}]")
