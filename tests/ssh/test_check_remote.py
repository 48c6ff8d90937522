"""`warroom check --host H TARGET` run as a user would: the layered check from a real sshd host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.sshd_harness import Lab, fingerprint

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]


def check(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "console", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def listener(lab: Lab) -> Iterator[str]:
    """A TCP server on prod-1's loopback address: healthy from that host."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.2", 0))
        srv.listen(64)
        yield f"127.0.0.2:{srv.getsockname()[1]}"


def closed_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])  # nothing listens once the socket closes


def test_healthy_and_refused_from_two_hosts_text(lab: Lab, listener: str) -> None:
    refused = f"127.0.0.2:{closed_port('127.0.0.2')}"
    result = check("--host", "prod-1", "--host", "behind", "--ssh-config", str(lab.ssh_config), listener, refused)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    verdicts = [line for line in result.stdout.splitlines() if ": verdict: " in line]
    # One verdict per (host, target).
    assert len(verdicts) == 4
    for host in ("prod-1", "behind"):
        assert f"{host}: verdict: {listener} healthy (tcp ok)" in verdicts
    refused_lines = [v for v in verdicts if refused in v]
    assert len(refused_lines) == 2 and all("FAILED at tcp (refused)" in v for v in refused_lines)
    assert f"{listener} from prod-1" in result.stdout and "  TCP   ok    " in result.stdout


def test_healthy_only_exits_0_and_json_has_host_and_verdict(lab: Lab, listener: str) -> None:
    result = check("--host", "prod-1", "--json", "--count", "2", "--interval", "0.2",
                   "--ssh-config", str(lab.ssh_config), listener)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    tcp = [d for d in lines if d.get("kind") == "tcp"]
    assert len(tcp) == 2 and all(d["host"] == "prod-1" and d.get("error") is None for d in tcp)
    verdicts = [d for d in lines if "verdict" in d]
    assert len(verdicts) == 1 and verdicts[0]["host"] == "prod-1" and verdicts[0]["target"] == listener
    assert verdicts[0]["verdict"] == "healthy"


def test_hostile_target_is_data_not_shell(lab: Lab, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    port = closed_port("127.0.0.2")
    hostile = f"http://127.0.0.2:{port}/;$(touch${{IFS}}{marker})`touch${{IFS}}{marker}`'\""
    result = check("--host", "prod-1", "--json", "--ssh-config", str(lab.ssh_config), hostile)
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    verdict = next(d for d in lines if "verdict" in d)
    assert verdict["target"] == hostile and verdict["first_broken_layer"] == "tcp"
    assert not marker.exists()


def test_unknown_host_key_is_one_line_and_exit_1(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("stranger", "127.0.0.13", trust=False)
    result = check("--host", "stranger", "--ssh-config", str(fresh_lab.ssh_config), "127.0.0.1:9")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warroom: check: stranger: host key for")
    assert fingerprint(Path(str(sshd.host_key) + ".pub")) in lines[0] and "--accept-new-host-keys" in lines[0]
    assert "verdict" not in result.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--host", "bad host", "127.0.0.1:9"], "not a host name"),
    (["--host", "prod:0", "127.0.0.1:9"], "1-65535"),
    (["--host", "prod-1", "127.0.0.1:9;rm -rf /"], "cannot contain spaces"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = check(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("warroom: check: ") and says in result.stderr
    assert result.stdout == ""
