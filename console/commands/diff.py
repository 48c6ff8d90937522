"""`warroom diff BEFORE AFTER [--json]`: two recordings side by side, headless.

Per target layer (and host): samples, success %, loss %, p50 and p99, and the
count of each error kind; per pool gauge: peak and mean utilization, peak in
use, the maximum and the longest time at it. Each figure has its change
(AFTER minus BEFORE). The figures come from the console's own store and stats
code (console/engine/compare.py), so they agree with what the screen showed.

Exit status: 0 compared; 1 the two recordings have no target or pool in
common (nothing to compare); 2 bad input (not a recording, a newer schema,
nothing in it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from console.commands.replay import load, report_problems
from console.engine.compare import LAYER_METRICS, POOL_METRICS, compare, figures
from console.settings.arguments import Parser
from console.settings.errors import EXIT_FAILED, EXIT_OK
from widgets.format import ms

LABELS = {"samples": "samples", "success_pct": "success", "loss_pct": "loss", "p50_ms": "p50", "p99_ms": "p99",
          "peak_util_pct": "peak use", "mean_util_pct": "mean use", "peak_used": "peak in use", "maximum": "max",
          "longest_at_max_s": "longest at max"}
UNITS = dict(LAYER_METRICS) | dict(POOL_METRICS)


def parser() -> Parser:
    parser = Parser(prog="warroom diff", description="Compare two recordings (before and after a change).",
                    epilog="exit status: 0 compared, 1 nothing in common to compare, 2 bad input")
    parser.add_argument("before", metavar="BEFORE", help="recording folder or file")
    parser.add_argument("after", metavar="AFTER", help="recording folder or file")
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    recordings = [load(Path(args.before)), load(Path(args.after))]
    for recording in recordings:
        report_problems(recording)
    before, after = (figures(r.all_samples()) for r in recordings)
    result = compare(before, after)
    result["before"]["path"], result["after"]["path"] = args.before, args.after
    if args.json:
        print(json.dumps(result, allow_nan=False, ensure_ascii=False))
    else:
        print(render(result))
    common = any(row["in"] == "both" for row in result["targets"] + result["pools"])
    if not common:
        print("warroom: the two recordings have no target or pool in common: nothing to compare", file=sys.stderr)
    return EXIT_OK if common else EXIT_FAILED


def number(value: Any, unit: str, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if unit == "ms":  # the console's own precision (0.004, 0.05, 4.2, 312)
        return ("+" if signed and value >= 0 else "-" if signed else "") + ms(abs(value) if signed else value) + unit
    text = f"{value:+.1f}" if signed and isinstance(value, float) else (
        f"{value:+d}" if signed else (f"{value:.1f}" if isinstance(value, float) else str(value)))
    if signed and unit == "%":
        return text + " pp"  # a change of a percentage is in points
    return text + unit


def render(result: dict[str, Any]) -> str:
    lines = [f"before: {result['before']['path']}", f"after:  {result['after']['path']}", ""]
    header = f"{'':38} {'before':>12} {'after':>12} {'change':>12}"
    for row in result["targets"]:
        where = f"{row['target']} {row['layer']}" + (f" from {row['host']}" if row["host"] != "local" else "")
        only = {"before": "  (only before)", "after": "  (only after)"}.get(row["in"], "")
        lines += [f"{where}{only}", header]
        for name, values in row["metrics"].items():
            lines.append(_line(LABELS[name], values, UNITS[name]))
        for kind, counts in row["errors"].items():
            lines.append(_line(f"errors {kind}", counts, ""))
        lines.append("")
    for pool in result["pools"]:
        only = {"before": "  (only before)", "after": "  (only after)"}.get(pool["in"], "")
        host = f" on {pool['host']}" if pool["host"] != "local" else ""
        lines += [f"pool {pool['pool']}{host} ({pool['source']}){only}", header]
        for name, values in pool["metrics"].items():
            lines.append(_line(LABELS[name], values, UNITS[name]))
        lines.append("")
    if not result["targets"] and not result["pools"]:
        lines.append("no target or pool figures in either recording")
    return "\n".join(lines).rstrip()


def _line(label: str, values: dict[str, Any], unit: str) -> str:
    return (f"  {label:36} {number(values['before'], unit):>12} {number(values['after'], unit):>12} "
            f"{number(values['change'], unit, signed=True):>12}")
