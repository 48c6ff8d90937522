"""CPU and RSS of the running console over 30 s at 120x40, beside `glances -t 1`.

warroom runs the demo (system pane plus 5 loopback targets at 1 Hz); glances
refreshes every second. Both run in tmux; CPU is the process's (and its
children's) CPU time over the window, RSS is sampled every 5 s so a growing
footprint shows.

    python3 bench/overhead.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tmux import TmuxSession

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def watch(command: str, marker: str, seconds: float) -> tuple[float, list[float]]:
    session = TmuxSession(command, 120, 40)
    try:
        session.wait_for(marker)
        time.sleep(2)  # let start-up settle; measure the steady state
        proc = psutil.Process(session.pane_pid())
        rss: list[float] = []
        start_cpu, start = cpu_seconds(proc), time.monotonic()
        while time.monotonic() - start < seconds:
            rss.append(proc.memory_info().rss / 1048576)
            time.sleep(5)
        used = cpu_seconds(proc) - start_cpu
        elapsed = time.monotonic() - start
        return 100.0 * used / elapsed, rss
    finally:
        session.close()


def report(name: str, cpu: float, rss: list[float]) -> None:
    print(f"{name:<14} CPU {cpu:5.2f}% of a core   RSS MB {' '.join(f'{r:.0f}' for r in rss)}"
          f"   (growth {rss[-1] - rss[0]:+.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    ours_cpu, ours_rss = watch(f"cd {ROOT} && exec {sys.executable} -m console demo", "Targets", args.seconds)
    report("warroom demo", ours_cpu, ours_rss)
    glances = shutil.which("glances")
    if glances is None:
        print("glances not installed: pip install 'warroom[bench]' to compare")
        return 0
    their_cpu, their_rss = watch(f"exec {glances} -t 1", "CPU", args.seconds)
    report("glances -t 1", their_cpu, their_rss)
    print(f"ratio CPU warroom/glances: {ours_cpu / their_cpu:.2f}   targets: CPU <= glances, RSS < 80 MB and flat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
