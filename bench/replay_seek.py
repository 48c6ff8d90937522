"""Seek time in a one-hour recording: write a synthetic incident hour, load it, seek at random.

The hour is what a busy console records: 10 targets with ICMP, TCP and HTTP each
second, system pressure, the socket summary, a socket table of --sockets sockets
and the pools view each second, and findings coming and going. It is written by
the real Recorder (zstd, snapshot deltas), loaded by the real replay reader, and
each seek rebuilds a real Store as the console's panes would read it.

    python3 bench/replay_seek.py [--sockets 2000] [--seeks 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.engine.recorder import Recorder  # noqa: E402
from console.engine.replay import Recording, ReplayPlayer, settle  # noqa: E402
from console.engine.store import Store  # noqa: E402
from probes.samples import Sample  # noqa: E402
from tests.recording.helpers import conns_table, pools_sample  # noqa: E402

TARGET_MS = 200.0


def hour(start: float, sockets: int) -> object:
    """Yield one hour of Samples, second by second."""
    targets = [f"http://127.0.0.1:{8000 + i}/health" for i in range(10)]
    for tick in range(3600):
        ts = start + tick
        for i, target in enumerate(targets):
            failing = i == 3 and 1200 <= tick < 1800
            yield Sample("icmp", target, ts + 0.001, {"rtt_ms": 0.05 + i / 100})
            if failing:
                yield Sample("tcp", target, ts + 0.002, {}, error="refused", message="Connect call failed")
                yield Sample("http", target, ts + 0.003, {}, error="connect-error", message="All connection attempts")
            else:
                yield Sample("tcp", target, ts + 0.002, {"rtt_ms": 0.1 + (tick % 7) / 10, "rtt_source": "kernel"})
                yield Sample("http", target, ts + 0.003, {"status": 200, "total_ms": 2.0 + (tick % 11),
                                                          "connect_ms": 0.2, "ttfb_ms": 1.5})
        yield Sample("system", "", ts + 0.004, {"cpu_percent": 20.0 + tick % 9, "mem_percent": 55.0, "load1": 1.2,
                                                "open_fds": 2048, "fd_max": 65536, "procs": 200})
        yield Sample("conns", "", ts + 0.005, {"states": {"ESTAB": sockets - 100, "CLOSE-WAIT": 100},
                                               "total": sockets})
        yield conns_table(ts + 0.006, sockets, tick)
        yield pools_sample(ts + 0.007, tick)
        if tick in (1202, 1801):
            yield Sample("finding", f"local/tcp/{targets[3]}", ts + 0.008,
                         {"change": "appeared" if tick == 1202 else "cleared", "rule": "unreachable",
                          "title": f"{targets[3]} refuses connections"})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--seeks", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="write the recording here and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="warroom-seek-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        start = time.time() - 7200
        began = time.perf_counter()
        recorder = Recorder(folder, max_bytes=10**12)
        count = 0
        for sample in hour(start, args.sockets):
            recorder(sample)
            count += 1
            if count % 5000 == 0:
                while len(recorder._pending) > 20000:  # keep memory flat: the writer is slower than this loop
                    time.sleep(0.01)
        recorder.close()
        written_s = time.perf_counter() - began
        size = sum(p.stat().st_size for p in folder.iterdir())
        began = time.perf_counter()
        recording = Recording.load(folder)
        settle()  # as `warroom replay` does after loading
        load_s = time.perf_counter() - began
        print(f"one hour, {count} Samples ({args.sockets} sockets in each table): {size / 1e6:.1f} MB on disk, "
              f"written in {written_s:.1f} s, loaded in {load_s:.2f} s")
        store = Store()
        player = ReplayPlayer(recording, store, store.add)
        rng = random.Random(7)
        jumps = [recording.start + rng.uniform(0, 3600) for _ in range(args.seeks)]
        times = []
        for ts in jumps:
            began = time.perf_counter()
            player.seek(ts)
            times.append((time.perf_counter() - began) * 1000)
            assert store.last(("local", "conns_table", "")) is not None
        steps = []
        for seconds in [10, -10, 60, -60] * 5:
            began = time.perf_counter()
            player.step(seconds)
            steps.append((time.perf_counter() - began) * 1000)
        p50, worst = statistics.median(times), max(times)
        print(f"random seek ({len(times)}): median {p50:.0f} ms, worst {worst:.0f} ms "
              f"(target under {TARGET_MS:.0f} ms); ±10 s / ±1 min steps: median {statistics.median(steps):.0f} ms, "
              f"worst {max(steps):.0f} ms")
        print(f"store after a seek: {len(store)} Samples in {len(store.keys())} series")
        return 0 if worst < TARGET_MS else 1
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
