"""RTT accuracy on a shaped link: warroom's tcp and icmp probes against ping, in the same run.

Needs root (it builds a lab namespace: tests/lab/netns.py). The link into the
namespace is shaped to DELAY +- JITTER ms (uniform) with LOSS; the three
measurers run at the same time through the same link, so they see the same
network. For each: successful count, loss, mean and stdev of the RTT, the mean
error against the configured delay, the stdev error against the configured
jitter's stdev (JITTER / sqrt 3), and the mean's difference from ping's.

    sudo python3 bench/rtt_accuracy.py [--count 200] [--delay 40] [--jitter 10] [--loss 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.engine.hub import Hub
from console.engine.store import Store
from probes.runtime import ProbeSpec
from tests.lab.netns import Lab, sweep_stale

PORT = 8080


async def run_ping(address: str, count: int, interval: float) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        "ping", "-n", "-i", str(interval), "-c", str(count), "-W", "1", address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return [float(m.group(1)) for m in re.finditer(r"time=([\d.]+) ms", out.decode())]


async def run_probes(address: str, count: int, interval: float, timeout: float) -> dict[str, list[float | None]]:
    store = Store()
    hub = Hub(store)
    for spec in (ProbeSpec("tcp", f"{address}:{PORT}", interval=interval, timeout=timeout),
                 ProbeSpec("icmp", address, interval=interval, timeout=timeout)):
        hub.start_probe(spec)
    deadline = asyncio.get_running_loop().time() + count * interval * 3 + 10
    while asyncio.get_running_loop().time() < deadline:
        keys = store.keys()
        if len(keys) == 2 and all(len(store.series(k)) >= count for k in keys):
            break
        await asyncio.sleep(0.2)
    await hub.stop()
    out: dict[str, list[float | None]] = {}
    series = store.keys()  # (host, kind, target) keys, not samples
    for key in series:
        out[key[1]] = [float(s.fields["rtt_ms"]) if s.ok else None for s in list(store.series(key))[:count]]
    return out


def row(name: str, values: list[float | None], sent: int, delay: float, jitter: float,
        ping_mean: float | None) -> str:
    ok = [v for v in values if v is not None]
    mean = statistics.mean(ok)
    sd = statistics.stdev(ok)
    vs_ping = "" if ping_mean is None else f"{mean - ping_mean:+7.2f}"
    return (f"{name:<6} {len(ok):>4}/{sent:<4} {100 * (sent - len(ok)) / sent:6.1f}% {mean:8.2f} {sd:7.2f} "
            f"{mean - delay:+8.2f} {sd - jitter / math.sqrt(3):+8.2f} {vs_ping:>8}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--delay", type=float, default=40.0)
    parser.add_argument("--jitter", type=float, default=10.0)
    parser.add_argument("--loss", type=float, default=0.10)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    sweep_stale()
    lab = Lab()
    try:
        ns = lab.namespace()
        ns.tcp_listener(PORT)
        ns.shape(args.delay, args.jitter, args.loss)
        # Timeout below TCP's 1 s SYN retransmission, so a lost SYN is a loss for every measurer alike.
        pinged, probed = await asyncio.gather(run_ping(ns.addr, args.count, args.interval),
                                              run_probes(ns.addr, args.count, args.interval, 0.5))
    finally:
        lab.close()
    print(f"link: {args.delay:g} ms +- {args.jitter:g} ms uniform (sd {args.jitter / math.sqrt(3):.2f} ms), "
          f"loss {args.loss:.0%}; {args.count} attempts each, every {args.interval:g} s, all at once")
    print(f"{'probe':<6} {'ok/sent':>9} {'loss':>7} {'mean':>8} {'stdev':>7} {'mean err':>8} {'sd err':>8} "
          f"{'vs ping':>8}   (ms)")
    ping_mean = statistics.mean(pinged) if pinged else None
    print(row("ping", list(pinged) + [None] * (args.count - len(pinged)), args.count, args.delay, args.jitter, None))
    for kind in ("tcp", "icmp"):
        values = probed.get(kind, [])
        print(row(kind, values, len(values), args.delay, args.jitter, ping_mean))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
