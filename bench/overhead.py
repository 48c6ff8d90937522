"""What the console costs, measured side by side in one run at 120x40, each figure beside its target.

1. glances -t 1, `warroom demo` and `warroom` with 5 HTTP targets on loopback (plus
   the host panes, all at 1 Hz), each in tmux at 120x40: CPU (the process and its
   children, user+sys over the window) and RSS (every 5 s). Target: at most 1.5x
   glances' CPU, RSS under 80 MB.
2. The UI's own cost against the number of targets: `warroom` with 5, 20 and 50
   targets in tmux, and the same targets with `--json` (no UI, stdout to
   /dev/null); UI = console - json. Target: under 0.2% of a core added per target.
3. With --soak S: RSS of the 5-target console over S seconds (600 = the 10 minutes
   of the target), every 10 s. Target: under 80 MB and flat.

Each run waits --warmup seconds after the first frame, then measures --seconds.
The targets are answered by bench/_loopback_http.py in a process of its own, so
the servers' CPU is not counted as warroom's (the demo's servers run inside
warroom, so the demo's figure includes them).

    python3 bench/overhead.py [--seconds 30] [--warmup 5] [--targets 5,20,50] [--soak 600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _installed import compile_tree, peer
from _machine import machine_busy_s
from _tmux import TmuxSession

ROOT = Path(__file__).resolve().parent.parent
CPU_RATIO_TARGET = 1.5
RSS_TARGET_MB = 80.0
PER_TARGET_TARGET = 0.2
#: RSS growth over a soak that still counts as flat (allocator noise, caches filling once).
FLAT_MB = 5.0


@dataclass
class Reading:
    cpu: float
    """Percent of one core over the window."""
    rss: list[float]
    """MB, sampled through the window."""
    others: float
    """Percent of one core the rest of the machine used meanwhile: other work (a test suite, another
    bench) makes the figures contended, and its sockets and processes go through the console's panes."""

    @property
    def rss_max(self) -> float:
        return max(self.rss)

    @property
    def growth(self) -> float:
        return self.rss[-1] - self.rss[0]


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 1048576


def measure(proc: psutil.Process, seconds: float, every: float = 5.0) -> Reading:
    rss: list[float] = []
    start_cpu, start_busy, start = cpu_seconds(proc), machine_busy_s(), time.monotonic()
    while True:
        rss.append(rss_mb(proc))
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            break
        time.sleep(min(every, left))
    used, busy, wall = cpu_seconds(proc) - start_cpu, machine_busy_s() - start_busy, time.monotonic() - start
    return Reading(100.0 * used / wall, rss, 100.0 * max(0.0, busy - used) / wall)


def in_tmux(command: str, marker: str, seconds: float, warmup: float, every: float = 5.0) -> Reading:
    session = TmuxSession(command, 120, 40)
    try:
        session.wait_for(marker, timeout=30)
        time.sleep(warmup)
        return measure(psutil.Process(session.pane_pid()), seconds, every)
    finally:
        session.close()


def headless(argv: list[str], seconds: float, warmup: float) -> Reading:
    """``warroom --json`` with its stream thrown away: the same probes, no screen."""
    proc = subprocess.Popen([sys.executable, "-m", "console", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup + 1.0)
        return measure(psutil.Process(proc.pid), seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def console(targets: list[str]) -> str:
    return f"cd {ROOT} && exec {sys.executable} -m console {' '.join(targets)}"


def line(name: str, reading: Reading, note: str = "") -> None:
    print(f"  {name:<26} CPU {reading.cpu:5.2f}%   RSS max {reading.rss_max:5.1f} MB (growth {reading.growth:+.1f})"
          f"   rest of the machine {reading.others:5.1f}%{'   ' + note if note else ''}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--targets", default="5,20,50", help="target counts for the UI-cost run ('' skips it)")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of the RSS soak (600 for 10 minutes)")
    args = parser.parse_args()
    compile_tree()  # as pip install does (bench/_installed.py)
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_loopback_http.py")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        urls = [f"http://127.0.0.1:{port}/t{i}" for i in range(max([5, *_counts(args.targets)]))]
        print(f"machine: {psutil.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; window {args.seconds:g} s after "
              f"{args.warmup:g} s; 120x40", flush=True)
        print("1. side by side (CPU % of one core):")
        glances = peer("glances")
        theirs = in_tmux(f"exec {glances} -t 1", "CPU", args.seconds, args.warmup) if glances else None
        if theirs is None:
            print("  glances not installed: pip install 'warroom[bench]' to compare")
        else:
            line("glances -t 1", theirs)
        demo = in_tmux(f"cd {ROOT} && exec {sys.executable} -m console demo", "Targets", args.seconds, args.warmup)
        five = in_tmux(console(urls[:5]), "Targets", args.seconds, args.warmup)
        for name, reading in (("warroom demo", demo), ("warroom 5 targets + host", five)):
            note = f"RSS target < {RSS_TARGET_MB:.0f} MB"
            if theirs is not None:
                note = (f"{reading.cpu / theirs.cpu:.2f}x glances (target <= {CPU_RATIO_TARGET}x); " + note)
            line(name, reading, note)
        counts = _counts(args.targets)
        if counts:
            print("2. UI cost against the number of targets (UI = console in tmux - the same targets with --json):")
            ui: dict[int, float] = {}
            for n in counts:
                shown = in_tmux(console(urls[:n]), "Targets", args.seconds, args.warmup)
                stream = headless(["--json", *urls[:n]], args.seconds, args.warmup)
                ui[n] = shown.cpu - stream.cpu
                print(f"  {n:>3} targets: console {shown.cpu:5.2f}%  --json {stream.cpu:5.2f}%  UI {ui[n]:5.2f}%"
                      f"  (console RSS max {shown.rss_max:.1f} MB)", flush=True)
            low, high = min(ui), max(ui)
            if high > low:
                per = (ui[high] - ui[low]) / (high - low)
                print(f"  UI added per target ({low} -> {high}): {per:+.3f}% of a core "
                      f"(target < {PER_TARGET_TARGET}%)")
        if args.soak > 0:
            print(f"3. RSS over {args.soak:g} s (5 targets + host panes, every 10 s):")
            soak = in_tmux(console(urls[:5]), "Targets", args.soak, args.warmup, every=10.0)
            later = soak.rss[len(soak.rss) // 6:]  # after the first sixth: caches have filled once
            print(f"  RSS start {soak.rss[0]:.1f} MB, end {soak.rss[-1]:.1f} MB, max {soak.rss_max:.1f} MB "
                  f"(target < {RSS_TARGET_MB:.0f} MB); growth after the first sixth {later[-1] - later[0]:+.1f} MB "
                  f"(flat: within {FLAT_MB:g} MB); CPU {soak.cpu:.2f}%; the rest of the machine {soak.others:.1f}% "
                  "of a core meanwhile (run it on an idle machine: other work's sockets and processes fill the "
                  "console's tables)")
    finally:
        server.terminate()
        server.wait(10)
    return 0


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
