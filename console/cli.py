"""The `warroom` entry point: pick the command, turn bad input into one line and exit status 2.

Commands live in console/commands/, one module per sub-command, each with
``main(argv: list[str]) -> int``; they are imported only when used, so
`warroom --version` and `warroom --json` stay fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from console.settings.errors import EXIT_BAD_INPUT, UsageError

#: Sub-command name -> module with ``main(argv: list[str]) -> int``.
SUBCOMMANDS: dict[str, str] = {
    "demo": "console.commands.demo",
    "check": "console.commands.check",
    "capture": "console.commands.capture",
    "replay": "console.commands.replay",
}
#: The console itself (and --json), when the first word is not a sub-command.
CONSOLE_COMMAND = "console.commands.console"


def fail(message: str) -> int:
    print(f"warroom: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    name = args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None
    try:
        if name is not None:
            return int(importlib.import_module(SUBCOMMANDS[name]).main(args_list[1:]))
        return int(importlib.import_module(CONSOLE_COMMAND).main(args_list))
    except UsageError as exc:
        return fail(f"{exc} (see warroom {name + ' ' if name else ''}--help)")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
