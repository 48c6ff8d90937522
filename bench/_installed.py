"""Run warroom and its peers as installed programs are run, so start-up figures compare like with like.

- ``pip install .`` compiles every module to bytecode; a source tree run with
  PYTHONDONTWRITEBYTECODE=1 (as this machine's environment sets) compiles
  warroom's ~130 modules again on every start, ~70 ms that no installed copy
  pays. ``compile_tree`` does what the install does, once, before timing.
- A pyenv shim (a shell script that finds the real program) adds ~80 ms to
  every start; ``peer`` finds the program beside this interpreter instead.
"""

from __future__ import annotations

import compileall
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_tree() -> None:
    for package in ("console", "widgets", "probes", "themes"):
        if (ROOT / package).is_dir():
            compileall.compile_dir(ROOT / package, quiet=1)


def peer(name: str) -> str | None:
    """The real executable of ``name``: the one installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)
