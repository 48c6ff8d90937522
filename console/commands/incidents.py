"""`warroom incidents`: every incident folder, most recent first, with its step and progress."""

from __future__ import annotations

import time

from console.engine import paths
from console.incident.folder import list_incidents
from console.settings.arguments import Parser


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def main(argv: list[str]) -> int:
    parser = Parser(prog="warroom incidents",
                    description="List the incidents kept under the data directory (start one with "
                                "warroom --incident NAME).")
    parser.add_argument("--paths", action="store_true", help="also print each incident's folder")
    args = parser.parse_args(argv)
    found = list_incidents()
    if not found:
        print(f"no incidents yet in {paths.incidents_dir()}: start one with warroom --incident NAME [TARGET...]")
        return 0
    width = max(8, *(len(s.name) for s in found))
    print(f"{'INCIDENT':<{width}}  {'CREATED':<16}  {'UPDATED':<16}  {'STEP':<11}  {'DONE':>5}  REPORT  TARGETS")
    for s in found:
        targets = ", ".join(s.targets[:3]) + (f" +{len(s.targets) - 3}" if len(s.targets) > 3 else "")
        print(f"{s.name:<{width}}  {_when(s.created):<16}  {_when(s.updated):<16}  {s.step:<11}  "
              f"{s.done:>2}/{s.total:<2}  {'yes' if s.has_report else 'no':<6}  {targets}")
        if args.paths:
            print(f"{'':<{width}}  {s.path}")
    return 0
