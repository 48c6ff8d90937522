"""Fixtures: real OpenSSH sshd hosts on loopback addresses, stopped even when a test fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.sshd_harness import SSHD, Lab


def _require_tools() -> None:
    # A missing tool is a failed install, not a reason to skip: say which package.
    missing = [tool for tool, path in (("sshd (openssh-server)", SSHD), ("ssh-keygen (openssh-client)", None),
                                       ("tcpdump", None))
               if not (Path(path).exists() if path else shutil.which(tool.split()[0]))]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install-test-deps.sh (scripts/apt.d/ssh.txt)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """prod-1 (python3), nopy (no python3 on PATH), bastion and behind (reached through bastion)."""
    _require_tools()
    lab = Lab(tmp_path_factory.mktemp("sshlab"))
    try:
        lab.add("prod-1", "127.0.0.2")
        lab.add("nopy", "127.0.0.3", python=False)
        lab.add("bastion", "127.0.0.4")
        lab.add("behind", "127.0.0.5", jump="bastion")
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of its own for tests that kill, restart or re-key hosts."""
    _require_tools()
    lab = Lab(tmp_path / "lab")
    try:
        yield lab
    finally:
        lab.stop()
