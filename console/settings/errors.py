"""The one error type for bad input: printed as one line, exit status 2."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) ending a command the way ctrl+c does; exit status 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interrupted_status(exc: KeyboardInterrupt) -> int:
    """The exit status of a command ended by ctrl+c (130) or by a stop signal (128 + its number)."""
    return 128 + exc.signum if isinstance(exc, Stopped) else 130
