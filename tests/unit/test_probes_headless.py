"""probes/ must never import Textual: it runs on remote hosts that do not have it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import probes

ROOT = Path(__file__).resolve().parents[2]


def test_importing_every_probe_module_does_not_import_textual() -> None:
    # rich may load (httpx imports its CLI module when rich is installed); Textual must not.
    names = [f"probes.{m.name}" for m in pkgutil.iter_modules(probes.__path__)]
    assert "probes.tcp" in names and "probes.system" in names
    code = (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "failed = []\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print('FAILED', failed) if failed else None\n"
        "print('TEXTUAL', bad) if bad else None\n"
        "sys.exit(1 if bad or failed else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
