"""`warroom incidents`: every incident folder, most recent first, with its step, progress and size; then the
automatic recordings (one folder per run), their sizes and what retention would remove (`--prune`: now)."""

from __future__ import annotations

import time

from console.engine import paths
from console.engine.retention import MB, Verdict, human_size, judge, prune, run_recordings, summary
from console.incident.folder import IncidentSummary, list_incidents
from console.settings.arguments import Parser, add_retention_arguments
from console.settings.settings import RetentionSettings, build_settings


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def parser() -> Parser:
    parser = Parser(prog="warroom incidents",
                    description="List the incidents kept under the data directory (start one with "
                                "warroom --incident NAME), then the automatic recordings every run makes and what "
                                "retention removes of them at the next start.")
    parser.add_argument("--paths", action="store_true", help="also print each folder")
    parser.add_argument("--prune", action="store_true",
                        help="remove now what retention would remove at the next start")
    add_retention_arguments(parser)
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config whose record_keep_days / record_keep_mb to apply "
                             "(default: ~/.config/warroom/config.toml when it exists)")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    policy = build_settings(args).retention
    if args.prune:
        line = summary(prune(policy), policy)
        print(f"warroom: {line}" if line else f"nothing to remove: automatic recordings are {policy.describe()}")
    found = list_incidents()
    verdicts = judge(run_recordings(), policy)
    if not found and not verdicts:
        print(f"no incidents yet in {paths.incidents_dir()}: start one with warroom --incident NAME [TARGET...]")
        return 0
    if found:
        print_incidents(found, paths_too=args.paths)
    else:
        print("no named incidents yet (start one with warroom --incident NAME [TARGET...])")
    print()
    print_recordings(verdicts, policy, paths_too=args.paths)
    return 0


def print_incidents(found: list[IncidentSummary], *, paths_too: bool) -> None:
    width = max(8, *(len(s.name) for s in found))
    print(f"{'INCIDENT':<{width}}  {'CREATED':<16}  {'UPDATED':<16}  {'STEP':<11}  {'DONE':>5}  REPORT  "
          f"{'SIZE':>8}  TARGETS")
    for s in found:
        targets = ", ".join(s.targets[:3]) + (f" +{len(s.targets) - 3}" if len(s.targets) > 3 else "")
        unrecorded = f"  ({s.unrecorded} session{'s' if s.unrecorded > 1 else ''} not recorded)" \
            if s.unrecorded else ""
        print(f"{s.name:<{width}}  {_when(s.created):<16}  {_when(s.updated):<16}  {s.step:<11}  "
              f"{s.done:>2}/{s.total:<2}  {'yes' if s.has_report else 'no':<6}  {human_size(s.size):>8}  "
              f"{targets}{unrecorded}")
        if paths_too:
            print(f"{'':<{width}}  {s.path}")
    print(f"{len(found)} incident{'s' if len(found) != 1 else ''}, {human_size(sum(s.size for s in found))}: "
          "named incidents are never removed automatically")


def print_recordings(verdicts: list[Verdict], policy: RetentionSettings, *, paths_too: bool) -> None:
    """The automatic recordings, newest first, each with its size and what retention does with it."""
    rule = (f"automatic recordings are {policy.describe()} (--keep-days {policy.keep_days or 0:g} "
            f"[{policy.days_from}], --keep-mb {policy.keep_mb or 0:g} [{policy.mb_from}]; 0 is no limit)")
    if not verdicts:
        print(f"no automatic recordings; {rule}")
        return
    width = max(9, *(len(v.run.path.name) for v in verdicts))
    print(f"{'RECORDING':<{width}}  {'LAST WRITTEN':<16}  {'SIZE':>8}  RETENTION")
    for v in reversed(verdicts):
        action = f"would be removed: {v.reason}" if v.remove else v.reason
        print(f"{v.run.path.name:<{width}}  {_when(v.run.last_written):<16}  {human_size(v.run.size):>8}  {action}")
        if paths_too:
            print(f"{'':<{width}}  {v.run.path}")
    total = sum(v.run.size for v in verdicts)
    going = [v for v in verdicts if v.remove]
    print(f"{len(verdicts)} automatic recording{'s' if len(verdicts) != 1 else ''}, {human_size(total)}"
          + (f"; the next start removes {len(going)} ({human_size(sum(v.run.size for v in going))}, "
             f"leaving {human_size(total - sum(v.run.size for v in going))})" if going else "; nothing to remove"))
    print(rule)
    if policy.keep_mb is not None and total - sum(v.run.size for v in going) > policy.keep_mb * MB:
        print("still over the size limit: the rest are being written, were written in the last minute or hold "
              "files warroom did not write")
