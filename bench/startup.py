"""Median time from process start to the first painted frame, warroom demo vs glances.

Both run in a real (detached) tmux terminal of 120x40 and are timed the same
way: from starting the session until a marker of their first screen can be
read back with `tmux capture-pane`. The polling adds up to ~5 ms to both.

Each program runs from a venv of its own, installed by pip as a user installs
it (bench/_installed.py says why this machine's own site-packages would not
compare like with like); --here runs this source tree and the glances installed
beside this Python instead. A third program is the floor Textual itself sets:
an app of the same tabs and footer and one line, on warroom's Python and
Textual; the difference is what warroom's own code adds.

    python3 bench/startup.py [--runs 11] [--here]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
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


#: The framework's own floor: a Textual app with what warroom's first frame is built of (the tabs, the
#: footer) and nothing of warroom's, run by the same interpreter and Textual as warroom.
FLOOR_APP = """
from textual.app import App
from textual.widgets import Footer, Static, TabbedContent, TabPane


class Floor(App[None]):
    def compose(self):
        with TabbedContent():
            with TabPane("1 Overview"):
                yield Static("Targets")
        yield Footer()


Floor().run()
"""


def commands(here: bool, floor_script: Path) -> tuple[str, str, str | None]:
    """The shell commands that start warroom's demo, the Textual floor app and glances (None: glances
    is not installed)."""
    if here:
        compile_tree()  # as pip install does (bench/_installed.py)
        glances = peer("glances")
        return (f"cd {ROOT} && exec {sys.executable} -m console demo", f"exec {sys.executable} {floor_script}",
                None if glances is None else f"exec {glances}")
    ours, theirs = fresh_install("."), fresh_install("glances")
    return (f"cd /tmp && exec {ours / 'warroom'} demo", f"exec {ours / 'python'} {floor_script}",
            f"exec {theirs / 'glances'}")


def line(name: str, times: list[float], extra: str = "") -> None:
    print(f"{name:13s} first frame: median {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}, n={len(times)}){extra}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--here", action="store_true",
                        help="this source tree and the glances beside this Python, not fresh venvs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor_script = Path(tmp) / "textual_floor.py"
        floor_script.write_text(FLOOR_APP)
        warroom, floor, glances = commands(args.here, floor_script)
        print("installs: " + ("this source tree and this Python's site-packages" if args.here else
                              "a fresh venv each, by pip (--here: this machine's own)"))
        programs = {"warroom": (warroom, "Targets"), "floor": (floor, "Targets")}
        if glances is not None:
            programs["glances"] = (glances, "CPU")
        times = measure(programs, args.runs)
    ours, bare = times["warroom"], times["floor"]
    line("warroom demo", ours, f"  target <= {TARGET_S} s: {statistics.median(ours) / TARGET_S:.2f}x")
    line("Textual floor", bare, f"  (tabs, footer and one line, same Python and Textual): warroom's own "
                                f"share {1000 * (statistics.median(ours) - statistics.median(bare)):.0f} ms")
    if glances is None:
        print("glances not installed: pip install 'warroom[bench]' to compare")
        return 0
    theirs = times["glances"]
    line("glances", theirs)
    print(f"ratio warroom/glances: {statistics.median(ours) / statistics.median(theirs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
