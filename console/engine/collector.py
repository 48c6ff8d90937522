"""The garbage collector paused while a start imports its modules."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_freeze_imports = False


def freeze_what_starts_import() -> None:
    """Called once by a process's own start (console/cli.py main with sys.argv): from then on what
    ``collector_paused`` imports is frozen too. Not by a test calling main() in its own process,
    whose garbage must stay collectable."""
    global _freeze_imports
    _freeze_imports = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The screen's imports build ~56k objects the collector tracks (modules, classes, functions, CSS)
    that live as long as the process: its passes while they are built walk them and find nothing to
    free. Resumed on the way out, whatever happens inside. In a process's own start they are frozen
    first (out of the collector's sight for good): resumed on its own, its first pass walked all of
    them at once (~20 ms here). CPU to the demo's first frame, interleaved starts: ~6% less for the
    freeze alone."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if _freeze_imports:
            gc.freeze()
        gc.enable()
