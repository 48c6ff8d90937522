"""`warroom check` run as a user would: a subprocess, its exit status, its text and JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.servers import DNSBehaviour
from tests.layers.helpers import closed_port

ROOT = Path(__file__).resolve().parents[2]


def warroom(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "console", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def resolver(dns_server):  # type: ignore[no-untyped-def]
    return dns_server({"good.test": DNSBehaviour(addresses=["127.0.0.1"])})


def test_healthy_https_target_prints_phase_bars_and_exits_0(resolver, tls_server, cert_lab) -> None:
    server = tls_server("good")
    result = warroom(f"https://good.test:{server.port}/ok", "--resolver", resolver.address,
                     "--no-system-resolvers", "--ca-file", str(cert_lab.ca_file))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for phase in ("dns", "connect", "tls", "server", "transfer", "total"):
        assert any(line.strip().startswith(phase) and " ms" in line for line in out.splitlines()), phase
    assert "█" in out or "#" in out
    assert out.strip().splitlines()[-1].startswith(f"verdict: https://good.test:{server.port}/ok healthy")
    assert result.stderr == ""


def test_broken_tls_names_the_layer_and_keeps_the_original_error(resolver, tls_server, cert_lab) -> None:
    server = tls_server("missing_intermediate")
    result = warroom(f"https://good.test:{server.port}/ok", "--resolver", resolver.address,
                     "--no-system-resolvers", "--ca-file", str(cert_lab.ca_file))
    assert result.returncode == 1
    verdict = result.stdout.strip().splitlines()[-1]
    assert "FAILED at tls (missing-intermediate)" in verdict
    assert "unable to get local issuer certificate" in verdict
    assert "not run: http" in verdict


def test_json_prints_samples_then_the_verdict(http_server) -> None:
    web = http_server()
    result = warroom(web.url("/status/504"), "--json", "--count", "2", "--interval", "0")
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    samples, verdict = lines[:-1], lines[-1]
    assert [s["kind"] for s in samples] == ["tcp", "http", "tcp", "http"]
    assert all(s["fields"]["status"] == 504 for s in samples if s["kind"] == "http")
    assert verdict["verdict"] == "failed" and verdict["first_broken_layer"] == "http"
    assert verdict["error"] == "http-504" and verdict["attempts"] == 2


def test_several_targets_one_failing_exits_1(http_server) -> None:
    web = http_server()
    result = warroom(web.url("/ok"), f"127.0.0.1:{closed_port()}", "--json")
    assert result.returncode == 1
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if '"verdict"' in line]
    assert [v["verdict"] for v in verdicts] == ["healthy", "failed"]
    assert verdicts[1]["first_broken_layer"] == "tcp" and verdicts[1]["error"] == "refused"


def test_dns_failure_text(dns_server) -> None:
    server = dns_server({})  # NXDOMAIN for every name
    result = warroom("api.test:443", "--resolver", server.address, "--no-system-resolvers")
    assert result.returncode == 1
    assert "FAILED at dns (nxdomain)" in result.stdout
    assert "NXDOMAIN for api.test" in result.stdout


def test_stalling_server_is_bounded_by_timeouts(http_server) -> None:
    web = http_server()
    started = time.monotonic()
    result = warroom(web.url("/stall"), "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    bar = next(line for line in result.stdout.splitlines() if line.strip().startswith("server"))
    assert "(ran out: read-timeout)" in bar  # the waterfall shows where the time went
    assert "FAILED at http (read-timeout)" in result.stdout
    assert elapsed < 8  # interpreter start-up plus one 1 s layer timeout; never a hang


def test_secrets_are_masked_in_output(http_server) -> None:
    web = http_server()
    url = f"http://ops:hunter2@127.0.0.1:{web.port}/ok?token=s3cr3t"
    for args in ((url,), (url, "--json")):
        result = warroom(*args)
        assert result.returncode == 0
        assert "hunter2" not in result.stdout and "s3cr3t" not in result.stdout
        assert "***@127.0.0.1" in result.stdout


@pytest.mark.parametrize("args", [
    ["not a target"], ["http://bad host/"], ["127.0.0.1:99999"], ["ftp://127.0.0.1/"],
    ["127.0.0.1:80", "--count", "0"], ["127.0.0.1:80", "--timeout", "-1"],
    ["api.test:80", "--resolver", "dns.example"], ["api.test:80", "--no-system-resolvers"],
    ["https://127.0.0.1/", "--ca-file", "/nonexistent/ca.pem"], [],
    ["http://ops:hunter2@bad host/"]])
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    started = time.monotonic()
    result = warroom(*args)
    assert result.returncode == 2
    assert result.stdout == ""  # nothing ran
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warroom: "), result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    assert time.monotonic() - started < 10


def test_count_prints_each_check_and_a_summary(http_server) -> None:
    web = http_server()
    result = warroom(web.url("/ok"), "--count", "3", "--interval", "0")
    assert result.returncode == 0
    assert result.stdout.count("(check ") == 3
    assert "over 3 checks" in result.stdout
    summary = result.stdout[result.stdout.index("over 3 checks"):]
    assert "connect" in summary and "server" in summary
