"""How well `warroom diagnose` names each fault of the lab: right top finding, how fast, false alarms.

Needs root (it builds the fault lab: tests/lab/faults.py). Each scenario runs
alone by default, so its faulty target's finding must be the very first one
printed (the contract's right top finding, to the letter), and "seconds" is
when that finding first reached the top (the command's first_top_s). With
--grouped the scenarios run in the test suite's groups (one run per layer,
several scenarios' targets at once) and "seconds" is the finding's first_seen
minus the run's start. False alarms: warning or critical findings about a
scenario's healthy controls (the healthy scenarios: any at all, at any moment).

    sudo python3 bench/diagnosis.py [--duration 15] [--grouped] [SCENARIO...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab import faults
from tests.lab.netns import LAB_SUPERNET, Lab, run, sweep_stale


def _solo(lab: faults.FaultLab, name: str, duration: float) -> tuple[faults.Verdict, bool, float | None]:
    scenario = faults.BUILDERS[name](lab)
    try:
        result = faults.diagnose(lab, [scenario], duration)
    finally:
        scenario.heal()
    verdict = faults.judge(scenario, result)
    if scenario.expect.layer is None or scenario.expect.about_this_host:
        return verdict, verdict.right, verdict.seconds
    first = result.findings[0] if result.findings else {}
    on_top = verdict.right and first.get("target") in scenario.faulty
    seconds = first.get("first_top_s") if on_top else None
    return verdict, on_top, float(seconds) if isinstance(seconds, (int, float)) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run (solo; default 15)")
    parser.add_argument("--grouped", action="store_true", help="the test suite's groups and durations")
    parser.add_argument("scenarios", nargs="*", help=f"default: all ({', '.join(faults.BUILDERS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in faults.BUILDERS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}")
    chosen = args.scenarios or list(faults.BUILDERS)
    sweep_stale()
    added = run(["ip", "route", "add", "unreachable", str(LAB_SUPERNET)], check=False).returncode == 0
    rows: list[tuple[str, str, str, str, str]] = []
    started = time.monotonic()
    lab = faults.FaultLab(Lab())
    try:
        if args.grouped:
            for group, names in faults.RUNS.items():
                wanted = [name for name in names if name in chosen]
                if not wanted:
                    continue
                scenarios = [faults.BUILDERS[name](lab) for name in wanted]
                try:
                    result = faults.diagnose(lab, scenarios, faults.DURATIONS[group])
                finally:
                    for scenario in scenarios:
                        scenario.heal()
                for scenario in scenarios:
                    verdict = faults.judge(scenario, result)
                    rows.append(_row(verdict, verdict.right, verdict.seconds))
                    print(_format(rows[-1]), flush=True)
        else:
            for name in chosen:
                verdict, on_top, seconds = _solo(lab, name, args.duration)
                rows.append(_row(verdict, on_top, seconds))
                print(_format(rows[-1]), flush=True)
    finally:
        lab.close()
        if added:
            run(["ip", "route", "del", "unreachable", str(LAB_SUPERNET)], check=False)
    print()
    print(_format(("scenario", "right top", "seconds", "false alarms", "top finding")))
    for row in rows:
        print(_format(row))
    right = sum(1 for row in rows if row[1] == "yes")
    print(f"\n{right} of {len(rows)} right; {time.monotonic() - started:.0f} s in all")
    return 0


def _row(verdict: faults.Verdict, right: bool, seconds: float | None) -> tuple[str, str, str, str, str]:
    return (verdict.scenario, "yes" if right else "no", f"{seconds:.1f}" if seconds is not None else "-",
            str(len(verdict.false_alarms)), "; ".join(verdict.got)[:90] or "no alarm")


def _format(row: tuple[str, str, str, str, str]) -> str:
    return f"{row[0]:<24} {row[1]:<9} {row[2]:>7} {row[3]:>12}  {row[4]}"


if __name__ == "__main__":
    sys.exit(main())
