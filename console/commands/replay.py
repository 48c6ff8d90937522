"""`warroom replay FILE`: open the console over a recording (or print it with --json).

A recording is the Sample stream as JSON lines (`warroom --record`, `--json`,
the SSH agent's output). Replay feeds it through the same hub and store, with
the store's clock set to the recording's last timestamp so the panes show the
incident as it stood when the recording ended.
"""

from __future__ import annotations

import sys
from pathlib import Path

from console.engine.recorder import RecordingError, read_recording
from console.settings.arguments import Parser
from console.settings.errors import UsageError
from console.settings.settings import Settings, build_settings


def main(argv: list[str]) -> int:
    parser = Parser(prog="warroom replay", description="Show a recording (JSON lines of Samples).")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print the valid Samples instead of opening the console")
    args = parser.parse_args(argv)
    settings = build_settings(args, use_config=False)
    settings.source = args.file
    return run(settings)


def run(settings: Settings) -> int:
    path = Path(settings.source or "")
    try:
        samples, problems = read_recording(path)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    for problem in problems[:5]:
        print(f"warroom: skipped {problem}", file=sys.stderr)
    if len(problems) > 5:
        print(f"warroom: skipped {len(problems) - 5} more bad lines", file=sys.stderr)
    if not samples:
        raise UsageError(f"{path} holds no Samples: record one with warroom --record FILE or --json")
    if settings.json:
        for sample in samples:
            print(sample.to_json())
        return 0
    from console.ui.app import AppConfig, create_app, require_terminal  # only the screen needs Textual

    require_terminal("warroom replay FILE --json")
    end = max(s.ts for s in samples)
    targets = list(dict.fromkeys(s.target for s in samples if s.kind in ("tcp", "http") and s.target))
    app = create_app(AppConfig(targets=targets, live=False, replay_end=end))
    for sample in samples:
        app.hub.publish(sample)
    return int(app.run() or 0)
