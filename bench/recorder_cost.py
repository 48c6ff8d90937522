"""What recording costs the UI loop: its lag with and without the recorder, and the bytes it writes.

The loop publishes what a busy console gets each second (30 probe Samples, the
system and pools views, and a socket table of --sockets sockets) through a real
Hub into a real Store, while a 5 ms ticker measures how late the loop runs.
The recorder's encoding, compression and writing happen on its own thread;
what is left on the loop is an append per Sample. The figures: the ticker's
lateness (median, p99, worst) without and with the recorder, the time of a
publish, and the recording's size per second.

    python3 bench/recorder_cost.py [--sockets 10000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.engine.hub import Hub  # noqa: E402
from console.engine.recorder import Recorder  # noqa: E402
from console.engine.store import Store  # noqa: E402
from probes.samples import Sample  # noqa: E402
from tests.recording.helpers import conns_table, pools_sample  # noqa: E402

TICK_S = 0.005


def second_of(ts: float, tick: int, tables: list[Sample]) -> list[Sample]:
    out = [Sample("tcp", f"127.0.0.1:{8000 + i}", ts, {"rtt_ms": 0.1 + i / 100}) for i in range(30)]
    out.append(Sample("system", "", ts, {"cpu_percent": 20.0, "mem_percent": 50.0}))
    out.append(pools_sample(ts, tick))
    table = tables[tick % len(tables)]
    out.append(Sample(table.kind, table.target, ts, table.fields))
    return out


async def run(seconds: int, tables: list[Sample], recorder: Recorder | None) -> tuple[list[float], list[float]]:
    hub = Hub(Store())
    if recorder is not None:
        hub.listeners.append(recorder)
    lateness: list[float] = []
    publish_ms: list[float] = []
    stop = time.monotonic() + seconds

    async def ticker() -> None:
        while time.monotonic() < stop:
            expected = time.monotonic() + TICK_S
            await asyncio.sleep(TICK_S)
            lateness.append((time.monotonic() - expected) * 1000)

    async def producer() -> None:
        tick = 0
        while time.monotonic() < stop:
            batch = second_of(time.time(), tick, tables)
            began = time.perf_counter()
            for sample in batch:
                hub.publish(sample)
            publish_ms.append((time.perf_counter() - began) * 1000)
            tick += 1
            await asyncio.sleep(1.0)

    await asyncio.gather(ticker(), producer())
    return lateness, publish_ms


def describe(label: str, lateness: list[float], publish_ms: list[float]) -> str:
    ordered = sorted(lateness)
    p99 = ordered[int(len(ordered) * 0.99)]
    return (f"{label:16} loop lateness median {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms, "
            f"worst {ordered[-1]:.1f} ms; one second's publish {statistics.median(publish_ms):.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    start = time.time()
    tables = [conns_table(start + i, args.sockets, i) for i in range(8)]
    raw = len(tables[0].to_json())
    print(f"socket table of {args.sockets} sockets: {raw / 1e6:.2f} MB of JSON per second")
    without = asyncio.run(run(args.seconds, tables, None))
    print(describe("no recorder", *without))
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(Path(folder))
        began = time.monotonic()
        with_rec = asyncio.run(run(args.seconds, tables, recorder))
        recorder.close()
        elapsed = time.monotonic() - began
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        print(describe("recording", *with_rec))
        print(f"recording: {size / elapsed / 1e3:.0f} kB/s on disk ({size / 1e6:.1f} MB in {elapsed:.0f} s; "
              f"{200e6 / (size / elapsed) / 3600:.1f} h fit the 200 MB cap), {recorder.written} Samples, "
              f"{recorder.dropped} dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
