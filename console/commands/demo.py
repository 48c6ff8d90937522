"""`warroom demo`: the console pointed at built-in misbehaving loopback servers."""

from __future__ import annotations

from console.commands.console import run_screen
from console.engine.collector import collector_paused
from console.engine.recorder import RecordingError, open_recorder
from console.settings.arguments import Parser, add_retention_arguments
from console.settings.errors import UsageError
from console.settings.settings import build_retention_settings, build_settings


def main(argv: list[str]) -> int:
    parser = Parser(prog="warroom demo",
                    description="Start loopback servers that misbehave like incident backends and watch them.")
    parser.add_argument("--theme", default=None,
                        help="warroom-dark, warroom-light, warroom-contrast or warroom-colorblind")
    parser.add_argument("--share", action="store_true", help="start in share mode (key S)")
    parser.add_argument("--no-record", action="store_true", help="do not record this run (every run records)")
    add_retention_arguments(parser)
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config: the demo reads only record_keep_days and record_keep_mb from it")
    args = parser.parse_args(argv)
    settings = build_settings(args, use_config=False)
    settings.retention = build_retention_settings(args)
    settings.demo = True
    with collector_paused():  # the screen's ~150 ms of imports (console/engine/collector.py)
        from console.ui.app import app_config, create_app, require_terminal

    require_terminal("warroom check or warroom --json")
    try:
        recorder = open_recorder(settings)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    try:
        return run_screen(create_app(app_config(settings, record=recorder, prune=True)))
    finally:
        if recorder is not None:
            recorder.close()
