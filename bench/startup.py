"""Median time from process start to the first painted frame, warroom demo vs glances.

Both run in a real (detached) tmux terminal of 120x40 and are timed the same
way: from starting the session until a marker of their first screen can be
read back with `tmux capture-pane`. The polling adds up to ~5 ms to both.

    python3 bench/startup.py [--runs 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _installed import compile_tree, peer
from _tmux import TmuxSession

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.35


def measure(command: str, marker: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        session = TmuxSession(command)
        try:
            times.append(session.wait_for(marker))
        finally:
            session.close()
        time.sleep(0.2)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    compile_tree()  # as pip install does (bench/_installed.py)
    warroom = f"cd {ROOT} && exec {sys.executable} -m console demo"
    ours = measure(warroom, "Targets", args.runs)
    print(f"warroom demo  first frame: median {statistics.median(ours):.3f} s "
          f"(min {min(ours):.3f}, max {max(ours):.3f}, n={len(ours)})  target <= {TARGET_S} s: "
          f"{statistics.median(ours) / TARGET_S:.2f}x")
    glances = peer("glances")
    if glances is None:
        print("glances not installed: pip install 'warroom[bench]' to compare")
        return 0
    theirs = measure(f"exec {glances}", "CPU", args.runs)
    print(f"glances       first frame: median {statistics.median(theirs):.3f} s "
          f"(min {min(theirs):.3f}, max {max(theirs):.3f}, n={len(theirs)})")
    print(f"ratio warroom/glances: {statistics.median(ours) / statistics.median(theirs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
