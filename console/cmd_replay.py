"""`warroom replay FILE`: open the console over a recording (or print it with --json).

A recording is the Sample stream as JSON lines (`warroom --record`, `--json`,
the SSH agent's output). Replay feeds it through the same hub and store, with
the store's clock set to the recording's last timestamp so the panes show the
incident as it stood when the recording ended.
"""

from __future__ import annotations

import sys
from pathlib import Path

from console.cli import UsageError, _Parser
from probes.samples import Sample, SampleDecodeError


def read_recording(path: Path) -> tuple[list[Sample], list[str]]:
    """All Samples in the file, and one problem line per line that was not a Sample."""
    samples: list[Sample] = []
    problems: list[str] = []
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    samples.append(Sample.from_json(raw))
                except SampleDecodeError as exc:
                    problems.append(f"{path} line {number}: {exc}")
    except OSError as exc:
        raise UsageError(f"cannot read recording {path}: {exc.strerror}") from None
    return samples, problems


def main(argv: list[str]) -> int:
    parser = _Parser(prog="warroom replay", description="Show a recording (JSON lines of Samples).")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print the valid Samples instead of opening the console")
    args = parser.parse_args(argv)
    path = Path(args.file)
    samples, problems = read_recording(path)
    for problem in problems[:5]:
        print(f"warroom: skipped {problem}", file=sys.stderr)
    if len(problems) > 5:
        print(f"warroom: skipped {len(problems) - 5} more bad lines", file=sys.stderr)
    if not samples:
        raise UsageError(f"{path} holds no Samples: record one with warroom --record FILE or --json")
    if args.json:
        for sample in samples:
            print(sample.to_json())
        return 0
    from console.app import AppConfig, create_app  # only the screen needs Textual

    end = max(s.ts for s in samples)
    targets = list(dict.fromkeys(s.target for s in samples if s.kind in ("tcp", "http") and s.target))
    app = create_app(AppConfig(targets=targets, live=False, replay_end=end))
    for sample in samples:
        app.hub.publish(sample)
    return int(app.run() or 0)
