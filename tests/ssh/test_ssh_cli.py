"""`warroom --host H --json` (console/commands/console.py) run as a user would, against real sshd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.settings.arguments import console_parser as build_parser
from probes.samples import Sample
from tests.ssh.sshd_harness import Lab, fingerprint

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_parser_has_the_ssh_options() -> None:
    args = build_parser().parse_args(["--host", "ops@prod-1:2222", "--host", "prod-2", "--accept-new-host-keys",
                                      "--ssh-config", "/tmp/cfg", "--json", "127.0.0.1:5432"])
    assert args.hosts == ["ops@prod-1:2222", "prod-2"]
    assert args.accept_new_host_keys and args.ssh_config == "/tmp/cfg" and args.targets == ["127.0.0.1:5432"]


def test_json_stream_from_two_hosts_for_a_duration(lab: Lab) -> None:
    sshd = lab.hosts["prod-1"]
    target = f"{sshd.addr}:{sshd.port}"
    result = run("--host", "prod-1", "--host", "behind", "--json", "--duration", "2.5", "--interval", "0.5",
                 "--ssh-config", str(lab.ssh_config), target)
    assert result.returncode == 0, result.stderr
    samples = [Sample.from_json(line) for line in result.stdout.splitlines()]
    for host in ("prod-1", "behind"):
        tcp = [s for s in samples if s.host == host and s.kind == "tcp"]
        assert len(tcp) >= 2 and all(s.ok and s.target == target for s in tcp)
        assert any(s.kind == "system" and s.host == host for s in samples)
        assert [s.fields["state"] for s in samples if s.host == host and s.kind == "host_status"][:2] == \
            ["connecting", "connected"]
    assert result.stderr == ""


def test_unknown_host_key_is_one_line_on_stderr_and_exit_1(fresh_lab: Lab) -> None:
    sshd = fresh_lab.add("stranger", "127.0.0.13", trust=False)
    result = run("--host", "stranger", "--json", "--duration", "20", "--ssh-config", str(fresh_lab.ssh_config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warroom: stranger: host key for")
    assert fingerprint(Path(str(sshd.host_key) + ".pub")) in lines[0]
    last = Sample.from_json(result.stdout.splitlines()[-1])
    assert last.kind == "host_status" and last.error == "host_key_unknown"


@pytest.mark.parametrize(("args", "says"), [
    (["--host", "bad host", "--json"], "not a host name"),
    (["--host", "prod:0", "--json"], "1-65535"),
    (["--host", "prod-1", "--json", "127.0.0.1:9;rm -rf /"], "cannot contain spaces"),
    (["--host", "prod-1", "--json", "127.0.0.1:$(reboot)"], "not a number"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("warroom: ") and says in result.stderr
    assert "Traceback" not in result.stderr


def test_a_host_that_is_down_is_retried_and_the_run_exits_1(fresh_lab: Lab) -> None:
    fresh_lab.add("down", "127.0.0.15").kill_all()
    fresh_lab.add("up", "127.0.0.16")
    result = run("--host", "down", "--host", "up", "--json", "--duration", "3", "--ssh-config",
                 str(fresh_lab.ssh_config), "127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr == "warroom: never connected to down (see the host_status samples for why)\n"
    samples = [Sample.from_json(line) for line in result.stdout.splitlines()]
    down = [s for s in samples if s.host == "down" and s.kind == "host_status"]
    retries = [s for s in down if s.fields["state"] == "reconnecting"]
    assert len(retries) >= 2 and "Connect call failed" in str(retries[0].message)
    delays = [float(s.fields["retry_in"]) for s in retries]  # type: ignore[arg-type]
    assert delays[1] > delays[0]  # exponential backoff
    assert any(s.host == "up" and s.kind == "tcp" for s in samples)  # the other host keeps running
