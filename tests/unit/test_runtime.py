"""The probe runtime: schedule, hard timeouts, error isolation, clean cancellation."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

from console.engine.hub import Hub, ProbeLoop
from console.engine.store import Store
from probes.runtime import scheduled
from probes.samples import Sample


async def test_hanging_measurement_yields_timeout_and_keeps_schedule() -> None:
    calls = 0

    async def measure() -> Sample:
        nonlocal calls
        calls += 1
        if calls == 2:
            await asyncio.sleep(3600)  # hangs
        return Sample("fake", "t", time.time(), {"n": calls})

    start = time.monotonic()
    got = [s async for s in scheduled(measure, kind="fake", target="t", interval=0.1, timeout=0.05, count=4)]
    elapsed = time.monotonic() - start
    assert [s.error for s in got] == [None, "timeout", None, None]
    assert got[1].message == "no result within 0.05 s"
    assert [s.fields.get("n") for s in got if s.ok] == [1, 3, 4]
    assert 0.28 < elapsed < 0.6  # four ticks 0.1 s apart; the hang cost no extra tick


async def test_raising_measurement_yields_error_sample_with_original_message() -> None:
    async def measure() -> Sample:
        raise RuntimeError("backend said: pool exhausted")

    got = [s async for s in scheduled(measure, kind="fake", target="t", interval=0.01, timeout=1, count=2)]
    assert [s.error for s in got] == ["exception", "exception"]
    assert got[0].message == "RuntimeError: backend said: pool exhausted"


async def test_overrun_skips_missed_ticks_instead_of_bursting() -> None:
    stamps: list[float] = []

    async def measure() -> Sample:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            await asyncio.sleep(0.25)  # overruns 2.5 intervals
        return Sample("fake", "t", time.time())

    _ = [s async for s in scheduled(measure, kind="fake", target="t", interval=0.1, timeout=1, count=3)]
    gaps = [b - a for a, b in pairwise(stamps)]
    assert gaps[0] >= 0.29  # next tick on the grid after the overrun (0.3 s), not immediately
    assert 0.08 < gaps[1] < 0.2


async def test_one_failing_probe_does_not_stop_another_and_stop_cancels_all() -> None:
    store = Store()
    hub = Hub(store, backoff_start=0.05)

    async def healthy():  # type: ignore[no-untyped-def]
        while True:
            yield Sample("good", "a", time.time(), {"v": 1})
            await asyncio.sleep(0.02)

    async def crashing():  # type: ignore[no-untyped-def]
        yield Sample("bad", "b", time.time(), {})
        raise OSError("probe bug")

    hub.add_stream("good", healthy, kind="good", target="a")
    hub.add_stream("bad", crashing, kind="bad", target="b")
    await asyncio.sleep(0.3)
    tasks = [r.task for r in hub.streams.values()]
    await hub.stop()
    assert all(t is not None and t.done() for t in tasks)
    assert len(store.series(("local", "good", "a"))) >= 8
    bad = list(store.series(("local", "bad", "b")))
    assert any(s.error == "exception" and "OSError: probe bug" in (s.message or "") for s in bad)
    assert sum(1 for s in bad if s.ok) >= 2  # restarted after backoff
    count = len(store)
    await asyncio.sleep(0.1)
    assert len(store) == count  # nothing runs after stop()


async def test_samples_from_the_probe_loop_all_arrive_in_order_and_stop_delivers_the_last() -> None:
    """Samples travel from the probe thread in batches: none is lost or reordered, and the ones a probe
    emitted just before stop() (a recording's last seconds) are in the store when stop() returns."""
    store = Store()
    probe_loop = ProbeLoop()
    hub = Hub(store, probe_loop=probe_loop)
    seen: list[int] = []
    hub.listeners.append(lambda s: seen.append(int(s.fields["n"])))  # type: ignore[arg-type]
    emitted: list[int] = []

    async def burst():  # type: ignore[no-untyped-def]
        for n in range(500):
            emitted.append(n)
            yield Sample("fake", "t", time.time(), {"n": n})
            if n % 50 == 49:
                await asyncio.sleep(0.01)
        while True:
            await asyncio.sleep(1)

    try:
        hub.add_stream("burst", burst, kind="fake", target="t")
        while len(emitted) < 500:
            await asyncio.sleep(0.005)
        await hub.stop()  # at once: most of the burst is still in the outbox
        assert seen == list(range(500))
        assert [s.fields["n"] for s in store.series(("local", "fake", "t"))][-3:] == [497, 498, 499]
    finally:
        probe_loop.close()
