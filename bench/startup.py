"""Median time from process start to the first painted frame, warroom demo vs glances.

Both run in a real (detached) tmux terminal of 120x40 and are timed the same
way: from starting the session until a marker of their first screen can be
read back with `tmux capture-pane`. The polling adds up to ~5 ms to both.

Each program runs from a venv of its own, installed by pip as a user installs
it (bench/_installed.py says why this machine's own site-packages would not
compare like with like); --here runs this source tree and the glances installed
beside this Python instead.

    python3 bench/startup.py [--runs 11] [--here]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _installed import compile_tree, fresh_install, peer
from _tmux import TmuxSession

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.35


def measure(programs: dict[str, tuple[str, str]], runs: int) -> dict[str, list[float]]:
    """Seconds to each program's marker, ``runs`` times; the programs take turns, so a machine that
    slows down for a minute (this one does) slows both."""
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(runs):
        for name, (command, marker) in programs.items():
            session = TmuxSession(command)
            try:
                times[name].append(session.wait_for(marker))
            finally:
                session.close()
            time.sleep(0.2)
    return times


def commands(here: bool) -> tuple[str, str | None]:
    """The shell commands that start warroom's demo and glances (None: glances is not installed)."""
    if here:
        compile_tree()  # as pip install does (bench/_installed.py)
        glances = peer("glances")
        return f"cd {ROOT} && exec {sys.executable} -m console demo", None if glances is None else f"exec {glances}"
    ours, theirs = fresh_install("."), fresh_install("glances")
    return f"cd /tmp && exec {ours / 'warroom'} demo", f"exec {theirs / 'glances'}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--here", action="store_true",
                        help="this source tree and the glances beside this Python, not fresh venvs")
    args = parser.parse_args()
    warroom, glances = commands(args.here)
    print("installs: " + ("this source tree and this Python's site-packages" if args.here else
                          "a fresh venv each, by pip (--here: this machine's own)"))
    programs = {"warroom": (warroom, "Targets")}
    if glances is not None:
        programs["glances"] = (glances, "CPU")
    times = measure(programs, args.runs)
    ours = times["warroom"]
    print(f"warroom demo  first frame: median {statistics.median(ours):.3f} s "
          f"(min {min(ours):.3f}, max {max(ours):.3f}, n={len(ours)})  target <= {TARGET_S} s: "
          f"{statistics.median(ours) / TARGET_S:.2f}x")
    if glances is None:
        print("glances not installed: pip install 'warroom[bench]' to compare")
        return 0
    theirs = times["glances"]
    print(f"glances       first frame: median {statistics.median(theirs):.3f} s "
          f"(min {min(theirs):.3f}, max {max(theirs):.3f}, n={len(theirs)})")
    print(f"ratio warroom/glances: {statistics.median(ours) / statistics.median(theirs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
