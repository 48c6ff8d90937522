"""Run warroom and its peers as installed programs are run, so start-up figures compare like with like.

- ``pip install .`` compiles every module to bytecode; a source tree run with
  PYTHONDONTWRITEBYTECODE=1 (as this machine's environment sets) compiles
  warroom's ~130 modules again on every start, ~70 ms that no installed copy
  pays. ``compile_tree`` does what the install does, once, before timing.
- A pyenv shim (a shell script that finds the real program) adds ~80 ms to
  every start; ``peer`` finds the program beside this interpreter instead.
- A development machine's site-packages is not a user's: this one holds ~150
  packages (the test dependencies among them), an editable install's finder and a
  sandbox's certificate hook. The two .pth files cost every Python start ~40 ms,
  and glances imports the optional packages it finds (pydantic, urllib3, ...):
  538 ms of imports here against 238 ms in a fresh venv. ``fresh_install`` puts a
  program in a venv of its own with what ``pip install`` gives a user.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Venvs are kept between runs: creating one and installing its dependencies takes ~25 s.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "warroom-bench"


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


def fresh_install(requirement: str) -> Path:
    """The bin directory of a venv of its own holding ``requirement`` as ``pip install`` gives it.

    "." is this source tree: its venv is kept while pyproject.toml stays the same (the dependencies),
    and the tree itself is installed again on every call, so the figures are of the code as it is.
    Needs PyPI the first time. Raises SystemExit with pip's last lines when the install fails.
    """
    local = requirement == "."
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12] if local else requirement
    home = CACHE / f"venv-{'warroom' if local else requirement}-{key}"
    python = home / "bin" / "python"
    if not python.is_file():
        shutil.rmtree(home, ignore_errors=True)
        venv.create(home, with_pip=True)
        _pip(python, str(ROOT) if local else requirement)
    elif local:
        _pip(python, "--no-deps", "--force-reinstall", str(ROOT))
    return home / "bin"


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SystemExit(f"pip install {' '.join(args)} failed in {python.parent.parent}: {tail} "
                         "(a fresh venv needs PyPI; --here measures this machine's installs instead)")
