"""Capture benchmark: does warroom's capture keep up wherever plain tcpdump does?

For each rate, a sender process blasts 16-byte UDP packets at a loopback
address (127.83.5.50, nothing listens) for a bounded time, while two captures
watch the same traffic in the same run:

- warroom: the capture probe (tcpdump -U -w - into an asyncio pipe, the header
  path parsing and summarising every packet), in this process;
- baseline: ``tcpdump -w /dev/null`` with the same interface, filter, snap
  length and buffer size.

Printed per rate: packets sent (and the rate reached), packets each side
summarised/captured, kernel drops of each, CPU of each (warroom = this
process's parser + its tcpdump; baseline = its tcpdump), then the highest
loss-free rate of each. Run as root (or with CAP_NET_RAW on tcpdump):

    python3 bench/capture.py                       # 50k..400k pkt/s, 2 s each
    python3 bench/capture.py --rates 100000,250000 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.capture import CaptureOptions, stream_capture  # after the path fix-up
from probes.samples import Sample

DEST = "127.83.5.50"
PORT = 9
FILTER = f"udp and dst host {DEST}"
SNAPLEN = 512
BUFFER_KIB = 32768

SENDER = r"""
import socket, sys, time
rate, seconds, dest, port = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
count = int(rate * seconds)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
addr = (dest, port)
payload = b"w" * 16
batch = max(1, rate // 2000)            # paced in 0.5 ms steps
step = batch / rate
sent = 0
start = time.perf_counter()
next_at = start
send = sock.sendto                      # unconnected: ICMP errors are not reported back, no send is lost
while sent < count:
    n = min(batch, count - sent)
    for _ in range(n):
        send(payload, addr)
    sent += n
    next_at += step
    delay = next_at - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
print(sent, time.perf_counter() - start)
"""

def sender_command(rate: int, seconds: float, workdir: str) -> list[str]:
    """The C sender (bench/udp_blast.c, built with the system cc) when a compiler exists, else Python's."""
    source = Path(__file__).with_name("udp_blast.c")
    binary = os.path.join(workdir, "udp_blast")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc and (os.path.exists(binary) or subprocess.run([cc, "-O2", "-o", binary, str(source)]).returncode == 0):
        return [binary, str(rate), str(seconds), DEST, str(PORT)]
    return [sys.executable, "-c", SENDER, str(rate), str(seconds), DEST, str(PORT)]


_STAT = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel)")


@dataclass
class Row:
    rate: int
    sent: int
    send_s: float
    warroom_seen: int
    warroom_dropped: int | None
    warroom_cpu: float
    warroom_tcpdump_cpu: float
    tcpdump_captured: int | None
    tcpdump_dropped: int | None
    tcpdump_cpu: float

    @property
    def warroom_ok(self) -> bool:
        return self.warroom_dropped == 0 and self.warroom_seen == self.sent

    @property
    def tcpdump_ok(self) -> bool:
        return self.tcpdump_dropped == 0 and self.tcpdump_captured == self.sent


def _cpu(proc: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        t = proc.cpu_times()
        return t.user + t.system
    return 0.0


async def _wait_listening(stderr: asyncio.StreamReader) -> None:
    while True:
        line = await stderr.readline()
        if not line or b"listening on" in line:
            return


async def one_rate(rate: int, seconds: float, workdir: str) -> Row:
    # Baseline tcpdump, same options as warroom's own.
    base = await asyncio.create_subprocess_exec(
        "tcpdump", "-i", "lo", "-n", "-s", str(SNAPLEN), "-B", str(BUFFER_KIB), "-w", "/dev/null", FILTER,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert base.stderr is not None
    await _wait_listening(base.stderr)
    # warroom's capture probe, in this process.
    opts = CaptureOptions(interface="lo", bpf=FILTER, snaplen=SNAPLEN, buffer_kib=BUFFER_KIB, interval=0.5)
    samples: list[Sample] = []
    listening = asyncio.Event()

    async def run_probe() -> None:
        async for sample in stream_capture(opts, "bench"):
            samples.append(sample)
            raw = sample.fields.get("health")
            if sample.ok and isinstance(raw, dict) and raw.get("state") == "listening":
                listening.set()
            if not sample.ok:
                listening.set()
                return

    task = asyncio.create_task(run_probe())
    await asyncio.wait_for(listening.wait(), 15)
    me = psutil.Process()
    kids = [p for p in me.children() if p.name() == "tcpdump"]
    base_ps = psutil.Process(base.pid)
    cpu0 = (time.process_time(), sum(_cpu(k) for k in kids), _cpu(base_ps))
    sender = await asyncio.create_subprocess_exec(*sender_command(rate, seconds, workdir),
                                                  stdout=asyncio.subprocess.PIPE)
    out, _ = await sender.communicate()
    sent_text, send_s_text = out.decode().split()
    sent, send_s = int(sent_text), float(send_s_text)
    await asyncio.sleep(2.2)  # libpcap hands over blocks up to 1 s late; then one more stats tick
    cpu1 = (time.process_time(), sum(_cpu(k) for k in kids), _cpu(base_ps))
    last = next((s for s in reversed(samples) if s.ok), None)
    raw = last.fields.get("health") if last else None
    health: dict[str, Any] = raw if isinstance(raw, dict) else {}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    base.send_signal(signal.SIGTERM)
    err = (await base.stderr.read()).decode()
    await base.wait()
    stats = {what: int(n) for n, what in _STAT.findall(err)}
    busy = max(send_s, 1e-9)
    return Row(rate=rate, sent=sent, send_s=send_s,
               warroom_seen=int(health.get("seen") or 0), warroom_dropped=health.get("dropped_kernel"),
               warroom_cpu=100 * (cpu1[0] - cpu0[0]) / busy, warroom_tcpdump_cpu=100 * (cpu1[1] - cpu0[1]) / busy,
               tcpdump_captured=stats.get("captured"), tcpdump_dropped=stats.get("dropped by kernel"),
               tcpdump_cpu=100 * (cpu1[2] - cpu0[2]) / busy)


async def main(rates: list[int], seconds: float) -> int:
    if os.geteuid() != 0:
        print("bench/capture.py runs tcpdump on lo: run it as root (or setcap tcpdump)", file=sys.stderr)
        return 2
    print(f"capture benchmark: 16-byte UDP to {DEST}:{PORT} on lo, {seconds:g} s per rate, "
          f"filter '{FILTER}', snaplen {SNAPLEN}, buffer {BUFFER_KIB} KiB for both; {psutil.cpu_count()} cores")
    workdir = tempfile.mkdtemp(prefix="warroom-bench-")
    print("sender: " + os.path.basename(sender_command(1, 1, workdir)[0]) + " (bench/udp_blast.c via cc, else Python)")
    print(f"{'target/s':>9} {'sent':>8} {'reached/s':>9} | {'warroom seen':>12} {'drops':>6} {'cpu%':>5} | "
          f"{'tcpdump cap':>11} {'drops':>6} {'cpu%':>5}")
    print(f"{'':>29}| {'':>12} {'':>6} {'py+td':>5} |")
    rows = []
    for rate in rates:
        row = await one_rate(rate, seconds, workdir)
        rows.append(row)
        print(f"{row.rate:>9} {row.sent:>8} {row.sent / row.send_s:>9.0f} | {row.warroom_seen:>12} "
              f"{row.warroom_dropped if row.warroom_dropped is not None else '?':>6} "
              f"{row.warroom_cpu:>3.0f}+{row.warroom_tcpdump_cpu:<3.0f} | "
              f"{row.tcpdump_captured if row.tcpdump_captured is not None else '?':>11} "
              f"{row.tcpdump_dropped if row.tcpdump_dropped is not None else '?':>6} {row.tcpdump_cpu:>5.0f}",
              flush=True)
    best_w = max((r.sent / r.send_s for r in rows if r.warroom_ok), default=0)
    best_t = max((r.sent / r.send_s for r in rows if r.tcpdump_ok), default=0)
    print(f"highest loss-free rate: warroom {best_w:.0f} pkt/s, tcpdump -w /dev/null {best_t:.0f} pkt/s")
    worse = [r.rate for r in rows if r.tcpdump_ok and not r.warroom_ok]
    print("warroom lost packets where tcpdump lost none at: " + (", ".join(map(str, worse)) if worse else "no rate"))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50000,100000,150000,200000,250000,300000,350000,400000")
    parser.add_argument("--seconds", type=float, default=2.0, help="sending time per rate (bounded)")
    args = parser.parse_args()
    rate_list = [int(r) for r in args.rates.split(",") if r]
    sys.exit(asyncio.run(main(rate_list, min(args.seconds, 10.0))))
