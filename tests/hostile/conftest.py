"""A sealed place to feed warroom bad input: a network namespace with only loopback.

Its resolv.conf (``ip netns exec`` bind-mounts /etc/netns/NAME/resolv.conf) points at
127.0.0.1, where nothing answers, so even a mistyped name sends no DNS query off the machine.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_COUNTER = itertools.count(900)


@dataclass
class Sealed:
    name: str

    def warroom(self, *args: str, timeout: float = 30, stdin: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``python3 -m console.cli ARGS`` inside the namespace; stdout is a pipe (not a terminal)."""
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        return subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-m", "console.cli", *args],
                              cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
                              input=stdin)


@pytest.fixture(scope="session")
def sealed() -> Iterator[Sealed]:
    if shutil.which("ip") is None:
        pytest.fail("iproute2 is missing: run scripts/install-test-deps.sh")
    name = f"wr-{os.getpid()}-{next(_COUNTER)}"
    etc = Path("/etc/netns") / name
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        yield Sealed(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command, after checking the refusal's shape."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warroom: "), lines[0]
    return lines[0]
