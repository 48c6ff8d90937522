"""`warroom demo`: the console pointed at built-in misbehaving loopback servers."""

from __future__ import annotations

from console.app import AppConfig, create_app
from console.cli import UsageError, _Parser


def main(argv: list[str]) -> int:
    parser = _Parser(prog="warroom demo",
                     description="Start loopback servers that misbehave like incident backends and watch them.")
    parser.add_argument("--theme", default=None, help="warroom-dark, warroom-light or warroom-contrast")
    args = parser.parse_args(argv)
    config = AppConfig(demo=True)
    if args.theme:
        from themes import THEME_NAMES

        if args.theme not in THEME_NAMES:
            raise UsageError(f"unknown theme {args.theme!r}: choose one of {', '.join(THEME_NAMES)}")
        config.theme = args.theme
    result = create_app(config).run()
    return int(result or 0)
