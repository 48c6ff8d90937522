"""Benchmark the SSH vantage points against real sshd on loopback.

1. Agent cost: one host running every probe in probes/ at 1 Hz for --seconds:
   the agent's CPU (user+sys over wall time, from /proc via psutil), Sample
   bytes/s on the channel (JSON lines as received) and bytes/s on the wire
   (the SSH TCP connection's kernel byte counters from `ss -ti`, both
   directions, SSH framing and encryption included).
2. Fan-out: --hosts sshd on 127.0.0.x; time from launching all RemoteHosts
   to the first Sample from each, and to Samples flowing from all of them.

Run: python3 bench/ssh.py [--hosts 20] [--seconds 20]   (as root: sshd needs it)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ssh"))

from sshd_harness import Lab, agent_processes, fast_settings  # noqa: E402

import probes  # noqa: E402
from console.remote.host import KIND_STATUS, RemoteHost, ship_for  # noqa: E402
from console.remote.payload import build_payload  # noqa: E402
from console.remote.stream import stream_remote  # noqa: E402
from console.settings.hosts import HostConfig  # noqa: E402
from probes.runtime import ProbeSpec  # noqa: E402


def all_probe_specs(tcp_target: str) -> list[ProbeSpec]:
    """A 1 Hz spec for every probe module shipped in probes/ (whatever the other issues have landed)."""
    host_wide = {"system", "conns", "pools", "capture"}
    specs = []
    for info in pkgutil.iter_modules(probes.__path__):
        try:
            module = importlib.import_module(f"probes.{info.name}")
        except Exception:  # a probe whose deps are missing here is simply not benchmarked
            continue
        if not (hasattr(module, "stream") and hasattr(module, "KIND")) or info.name in ("capture",):
            continue  # capture is a stream of packets, benchmarked by its own issue
        if info.name in host_wide:
            specs.append(ProbeSpec(info.name, interval=1.0))
        elif info.name == "http":
            specs.append(ProbeSpec(info.name, f"http://{tcp_target}/", interval=1.0))
        elif info.name == "dns":
            specs.append(ProbeSpec(info.name, "localhost", interval=1.0))
        else:
            specs.append(ProbeSpec(info.name, tcp_target, interval=1.0))
    return specs


def wire_bytes(addr: str, port: int) -> int:
    """Bytes acked + received on the SSH connections to addr:port, from the kernel (ss -ti)."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    total = 0
    for match in re.finditer(r"bytes_(?:acked|received):(\d+)", out):
        total += int(match.group(1))
    return total


async def agent_cost(lab: Lab, seconds: float) -> None:
    sshd = lab.add("cost", "127.0.0.40")
    with socket.socket() as listener:  # a TCP target that answers, on loopback
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        target = f"127.0.0.1:{listener.getsockname()[1]}"
        specs = all_probe_specs(target)
        remote = RemoteHost(HostConfig("cost"), specs, fast_settings(lab, ping_interval=5.0))
        stream = remote.stream()
        sample_bytes = 0
        samples = 0
        kinds: dict[str, int] = {}
        start_wire = start_cpu = start = None
        start_wall = 0.0
        agent = None
        launched = time.monotonic()
        cold = None
        async for sample in stream:
            if sample.kind == KIND_STATUS:
                continue
            if cold is None:
                cold = time.monotonic() - launched
            if agent is None:
                agent = agent_processes(sshd.addr, sshd.port)
                agent = next(p for p in agent if "warroom-agent" in " ".join(p.cmdline()))
                await asyncio.sleep(2.0)  # settle: start-up imports are not the steady state
                start_cpu = sum(agent.cpu_times()[:2])
                start_wire = wire_bytes(sshd.addr, sshd.port)
                start = time.monotonic()
                start_wall = time.time()
                continue
            if start is None or sample.ts < start_wall:
                continue  # sent before the window opened (buffered while we settled)
            samples += 1
            kinds[sample.kind] = kinds.get(sample.kind, 0) + 1
            sample_bytes += len(sample.to_json().encode()) + 1
            if time.monotonic() - start >= seconds:
                break
        wall = time.monotonic() - start  # type: ignore[operator]
        cpu = sum(agent.cpu_times()[:2]) - start_cpu  # type: ignore[union-attr,operator]
        wire = wire_bytes(sshd.addr, sshd.port) - start_wire  # type: ignore[operator]
        await stream.aclose()
    print(f"one host, cold: connect + host key + ship agent ({len(build_payload(ship_for(specs))):,} B) + "
          f"first Sample: {cold:.3f} s")
    print(f"agent cost, 1 host, probes {[s.kind for s in specs]} at 1 Hz for {wall:.1f} s:")
    print(f"  samples received: {samples} ({samples / wall:.1f}/s) by kind {kinds}")
    print(f"  agent CPU: {100 * cpu / wall:.2f} % of one core (user+sys {cpu:.2f} s)")
    print(f"  channel payload: {sample_bytes / wall:,.0f} B/s of JSON lines; wire (SSH, both directions): "
          f"{wire / wall:,.0f} B/s")


async def fan_out(lab: Lab, n: int) -> None:
    t0 = time.monotonic()
    names = []
    for i in range(n):
        name = f"h{i:02d}"
        lab.add(name, f"127.0.0.{50 + i}")
        names.append(name)
    print(f"started {n} sshd in {time.monotonic() - t0:.2f} s")
    specs = [ProbeSpec("tcp", "127.0.0.1:9", interval=1.0), ProbeSpec("system", interval=1.0)]
    first: dict[str, float] = {}
    connected: dict[str, float] = {}
    start = time.monotonic()
    hosts = [HostConfig(name) for name in names]
    async for sample in stream_remote(hosts, specs, settings=fast_settings(lab, connect_timeout=30.0),
                                      duration=60):
        now = time.monotonic() - start
        if sample.kind == KIND_STATUS:
            if sample.fields.get("state") == "connected":
                connected.setdefault(sample.host, now)
            elif sample.error:
                print(f"  {sample.host}: {sample.message}")
            continue
        first.setdefault(sample.host, now)
        if len(first) == n:
            break
    times = sorted(first.values())
    print(f"fan-out to {n} hosts (connect + ship agent + first Sample), all launched at once:")
    print(f"  first Sample: fastest {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
          f"all {n} flowing after {times[-1]:.2f} s")
    print(f"  connected (agent hello): median {statistics.median(connected.values()):.2f} s, "
          f"last {max(connected.values()):.2f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp) / "lab")
        try:
            await agent_cost(lab, args.seconds)
            await fan_out(lab, args.hosts)
        finally:
            lab.stop()
    print(f"(machine: {psutil.cpu_count()} CPUs, load {psutil.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
