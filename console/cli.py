"""The `warroom` entry point: pick the command, turn bad input into one line and exit status 2.

Commands live in console/commands/, one module per sub-command, each with
``main(argv: list[str]) -> int``; they are imported only when used, so
`warroom --version` and `warroom --json` stay fast.
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import signal
import sys
from collections.abc import Sequence

from console.engine.collector import collector_paused, freeze_what_starts_import
from console.settings.errors import EXIT_BAD_INPUT, Stopped, UsageError, interrupted_status

#: Sub-command name -> module with ``main(argv: list[str]) -> int``.
SUBCOMMANDS: dict[str, str] = {
    "demo": "console.commands.demo",
    "check": "console.commands.check",
    "diagnose": "console.commands.diagnose",
    "capture": "console.commands.capture",
    "replay": "console.commands.replay",
    "incidents": "console.commands.incidents",
    "report": "console.commands.report",
    "diff": "console.commands.diff",
    "serve": "console.commands.serve",
}
#: The console itself (and --json), when the first word is not a sub-command.
CONSOLE_COMMAND = "console.commands.console"


def not_a_command_or_target(word: str) -> str | None:
    """Why the first word is neither a sub-command nor a target, or None when it may be a target.

    A target given first must be a URL, HOST:PORT or an IP address, so a mistyped sub-command
    (``warroom chek``) is an error and not a host name to look up.
    """
    from probes.targets import TargetError, parse_target

    if word.startswith("-") or "://" in word or ":" in word:
        return None
    try:
        ipaddress.ip_address(word)
        return None
    except ValueError:
        pass
    try:
        parse_target(word)
    except TargetError:
        return None  # not a name either: the target parser's own message says why
    near = difflib.get_close_matches(word, list(SUBCOMMANDS), n=1, cutoff=0.5)
    hint = f"did you mean 'warroom {near[0]}'? " if near else ""
    return (f"{word!r} is not a sub-command ({', '.join(SUBCOMMANDS)}) or a target: {hint}"
            f"to probe a host by name, give it as {word}:PORT or a URL")


def fail(message: str) -> int:
    print(f"warroom: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


#: SIGTERM and SIGHUP end a command the way ctrl+c does: every probe and child is stopped on the way out.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        for signum in STOP_SIGNALS:
            # A signal ignored when we started stays ignored: `nohup warroom --json ... &` asked for its
            # SIGHUP to be, so a run outlives the terminal it was started from (Python keeps SIGINT so).
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _stop)  # the screen replaces these with a clean exit while it runs
        freeze_what_starts_import()
    args_list = list(sys.argv[1:] if argv is None else argv)
    name = args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None
    try:
        if name is not None:
            with collector_paused():
                command = importlib.import_module(SUBCOMMANDS[name])
            return int(command.main(args_list[1:]))
        problem = not_a_command_or_target(args_list[0]) if args_list else None
        if problem is not None:
            return fail(problem)
        with collector_paused():
            command = importlib.import_module(CONSOLE_COMMAND)
        return int(command.main(args_list))
    except UsageError as exc:
        return fail(f"{exc} (see warroom {name + ' ' if name else ''}--help)")
    except KeyboardInterrupt as exc:
        return interrupted_status(exc)


if __name__ == "__main__":
    sys.exit(main())
