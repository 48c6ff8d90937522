"""`warroom diagnose --host H`: the SSH host runs the same probes, and its findings are listed beside ours."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ssh.sshd_harness import Lab

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]


def test_findings_from_the_ssh_host_too(lab: Lab) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there, from either host
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "console.cli", "diagnose", target, "--host", "prod-1",
                           "--ssh-config", str(lab.ssh_config), "--json", "--duration", "8"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    refused = {r["host"]: r for r in records if r["target"] == target and r["layer"] == "tcp"}
    assert set(refused) == {"local", "prod-1"}, records
    assert all("refused" in r["title"] for r in refused.values())
    assert [r["target"] for r in records[:2]] == [target, target]  # both rank above anything about a host
