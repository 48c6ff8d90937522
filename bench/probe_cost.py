"""CPU cost of the console probing N targets at 1 Hz each (default 50 targets, 20 s).

Targets are loopback only: a child process listens on N ports of 127.0.0.1 (its
CPU is not counted); icmp targets are 127.0.0.1 .. 127.0.0.N, which all answer.
The probes run the console's real path (Hub -> Store); the figure is this
process's user + system CPU time over the run's wall time, as a percentage of
one core, plus CPU microseconds per Sample.

    python3 bench/probe_cost.py [--targets 50] [--seconds 20] [--kinds tcp,icmp,tcp+icmp]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.engine.hub import Hub
from console.engine.store import Store
from probes.runtime import ProbeSpec

LISTENER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
ports = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024); sel.register(s, selectors.EVENT_READ)
    ports.append(s.getsockname()[1])
print(" ".join(map(str, ports)), flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept(); conn.close()
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(specs: list[ProbeSpec], seconds: float) -> tuple[float, int, int]:
    store = Store()
    hub = Hub(store)
    wall0, cpu0 = time.monotonic(), cpu_seconds()
    for spec in specs:
        hub.start_probe(spec)
    await asyncio.sleep(seconds)
    await hub.stop()
    wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
    failures = Counter(f"{s.error}: {s.message}" for s in store if not s.ok)
    for text, count in failures.most_common(3):
        print(f"    {count} x {text}")
    return 100.0 * cpu / wall, store.total_added, sum(failures.values())


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kinds", default="tcp,icmp,tcp+icmp")
    args = parser.parse_args()
    listener = subprocess.Popen([sys.executable, "-c", LISTENER, str(args.targets)], stdout=subprocess.PIPE)
    try:
        assert listener.stdout is not None
        ports = [int(p) for p in listener.stdout.readline().split()]
        # Warm the imports (and their CPU) before the clock starts.
        import probes.icmp
        import probes.tcp  # noqa: F401
        print(f"{args.targets} targets at 1 Hz each for {args.seconds:g} s, loopback; CPU of this process only")
        print(f"{'probes':<10} {'CPU % of 1 core':>16} {'samples':>8} {'failed':>7} {'CPU us/sample':>14}")
        for combo in args.kinds.split(","):
            specs = []
            for kind in combo.split("+"):
                for i, port in enumerate(ports):
                    target = f"127.0.0.1:{port}" if kind == "tcp" else f"127.0.0.{i + 1}"
                    specs.append(ProbeSpec(kind, target, interval=1.0, timeout=2.0))
            pct, samples, failed = await measure(specs, args.seconds)
            per_sample = pct / 100.0 * args.seconds / max(samples, 1) * 1e6
            print(f"{combo:<10} {pct:>15.2f}% {samples:>8} {failed:>7} {per_sample:>14.0f}")
    finally:
        listener.kill()
        listener.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
