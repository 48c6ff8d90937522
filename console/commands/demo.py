"""`warroom demo`: the console pointed at built-in misbehaving loopback servers."""

from __future__ import annotations

from console.engine.recorder import RecordingError, open_recorder
from console.settings.arguments import Parser
from console.settings.errors import UsageError
from console.settings.settings import build_settings


def main(argv: list[str]) -> int:
    parser = Parser(prog="warroom demo",
                    description="Start loopback servers that misbehave like incident backends and watch them.")
    parser.add_argument("--theme", default=None,
                        help="warroom-dark, warroom-light, warroom-contrast or warroom-colorblind")
    parser.add_argument("--share", action="store_true", help="start in share mode (key S)")
    parser.add_argument("--no-record", action="store_true", help="do not record this run (every run records)")
    settings = build_settings(parser.parse_args(argv), use_config=False)
    settings.demo = True
    from console.ui.app import app_config, create_app, require_terminal

    require_terminal("warroom check or warroom --json")
    try:
        recorder = open_recorder(settings)
    except RecordingError as exc:
        raise UsageError(str(exc)) from None
    try:
        return int(create_app(app_config(settings, record=recorder)).run() or 0)
    finally:
        if recorder is not None:
            recorder.close()
