"""The fault lab itself: each fault is really there, each control is really healthy, and heal() removes the fault.

Judged without the diagnosis rules, by what a person would run from the
client namespace: `warroom check` (one layered check per target), ping, a
PostgreSQL client, ss, plain HTTP requests. Every scenario is built in one
lab, checked, healed, and checked again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab import faults
from tests.lab.faults import FaultLab, Scenario
from tests.lab.netns import Lab, list_namespaces, run
from tests.lab.test_lab_cleanup import alive

pytestmark = pytest.mark.system

#: What `warroom check` says about the faulty target (its verdict's error) while the fault is on.
CHECK_ERRORS = {
    "nxdomain": "nxdomain", "resolvers_disagree": "resolvers-disagree", "refused": "refused",
    "syn_drop": "timeout", "backlog": "timeout", "tls_expired": "expired",
    "tls_incomplete_chain": "missing-intermediate", "tls_wrong_name": "hostname-mismatch",
    "tls_expired_untrusted": "untrusted-root", "proxy_504": "http-504", "stall": "read-timeout",
}


@pytest.fixture(scope="module")
def built(lab_session: None) -> Iterator[tuple[FaultLab, dict[str, Scenario]]]:
    lab = FaultLab(Lab())
    try:
        yield lab, {name: build(lab) for name, build in faults.BUILDERS.items()}
    finally:
        lab.close()


def _check(lab: FaultLab, targets: list[str]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """`warroom check --json` on ``targets``: verdicts by target, and the Samples.

    Checks run one target after the other, and a dropped SYN or a stall costs its whole timeout:
    the targets are split over three processes that run at once.
    """
    env = {**os.environ, "PYTHONPATH": str(faults.REPO)}
    procs = [subprocess.Popen(lab.client_argv([sys.executable, "-m", "console.cli", "check", *targets[i::3],
                                               "--json", "--timeout", "3"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=faults.REPO)
             for i in range(3) if targets[i::3]]
    lines: list[dict[str, Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1), err
        lines += [json.loads(line) for line in out.splitlines() if line.strip()]
    return {v["target"]: v for v in lines if "verdict" in v}, [s for s in lines if "verdict" not in s]


def _ping_loss(lab: FaultLab, *names: str, count: int = 40) -> dict[str, int]:
    """Echoes lost out of ``count`` toward each name (pinged at the same time)."""
    procs = {name: subprocess.Popen(lab.client_argv(["ping", "-n", "-q", "-c", str(count), "-i", "0.02", "-W", "1",
                                                     name]), stdout=subprocess.PIPE, text=True)
             for name in names}
    lost = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=30)
        match = re.search(r"(\d+) received", out)
        assert match, out
        lost[name] = count - int(match.group(1))
    return lost


def _python(lab: FaultLab, code: str) -> str:
    proc = lab.run([sys.executable, "-c", code], timeout=30)
    return proc.stdout + proc.stderr


def _app_statuses(lab: FaultLab, url: str, count: int) -> list[int]:
    code = ("import http.client, urllib.parse\n"
            f"u = urllib.parse.urlsplit({url!r})\n"
            f"for _ in range({count}):\n"
            "    c = http.client.HTTPConnection(u.hostname, u.port, timeout=3); c.request('GET', u.path)\n"
            "    print(c.getresponse().status); c.close()\n")
    return [int(line) for line in _python(lab, code).split()]


def test_every_fault_is_there_then_healed(built: tuple[FaultLab, dict[str, Scenario]]) -> None:
    lab, scenarios = built
    faulty = [t for name in CHECK_ERRORS for t in scenarios[name].faulty]
    controls = sorted({t for s in scenarios.values() for t in s.controls})
    slow_name = scenarios["slow_resolver"].faulty
    verdicts, samples = _check(lab, faulty + controls + slow_name)
    for name, error in CHECK_ERRORS.items():
        for target in scenarios[name].faulty:
            assert verdicts[target]["error"] == error, (name, verdicts[target])
    for target in controls:
        assert verdicts[target]["verdict"] == "healthy", verdicts[target]
    slow = [s for s in samples if s["kind"] == "dns" and s["target"] == "http://slow.lab:8080/ok"]
    assert slow and all(s["fields"]["time_ms"] >= 2000 for s in slow)  # both resolvers take 2 s

    # Loss: every 10th packet toward lossy1 (exactly), 30% at random toward lossy2, every 8th toward ext.
    lost = _ping_loss(lab, "lossy1.lab", "lossy2.lab", "ext.lab", "int.lab", "jitter.lab")
    assert 3 <= lost["lossy1.lab"] <= 5, lost
    assert lost["lossy2.lab"] >= 5 and lost["ext.lab"] >= 4, lost
    assert lost["int.lab"] == 0 and lost["jitter.lab"] == 0, lost
    assert _app_statuses(lab, "http://waf.lab:8081/app", 6).count(302) == 2  # one in three challenged
    assert "remaining connection slots" in _python(
        lab, "import psycopg\ntry:\n    psycopg.connect('postgresql://app@db.lab:5432/postgres', "
             f"password={faults.PG_PASSWORD!r})\nexcept Exception as exc:\n    print(exc)")
    close_wait = lab.run(["ss", "-Htn", "state", "close-wait"], timeout=5).stdout.splitlines()  # the leakers'
    assert sum(":7100" in line for line in close_wait) >= 5 and sum(":7200" in line for line in close_wait) >= 5

    # Without dnspython (python -S: a bare host's agent) the probes' lookup falls back to getaddrinfo.
    bare = lab.run([sys.executable, "-S", "-c", "import asyncio\nfrom probes import resolve\n"
                    "print(asyncio.run(resolve.lookup('web.lab')).address)\n"
                    "try:\n    asyncio.run(resolve.lookup('missing.lab'))\n"
                    "except resolve.LookupFailed as exc:\n    print(exc.kind, exc)\n"], timeout=30)
    assert "import dns" not in bare.stderr and bare.returncode == 0, bare.stderr
    address, failure = bare.stdout.splitlines()
    assert address == lab._named["web.lab"].addr
    assert failure.startswith("nxdomain missing.lab: ")  # and the C library's own words after it

    for scenario in scenarios.values():
        scenario.heal()
    healed, samples = _check(lab, faulty + controls + slow_name)
    for target in faulty + controls:
        assert healed[target]["verdict"] == "healthy", healed[target]
    slow = [s for s in samples if s["kind"] == "dns" and s["target"] == "http://slow.lab:8080/ok"]
    assert slow and all(s["fields"]["time_ms"] < 500 for s in slow)
    assert set(_ping_loss(lab, "lossy1.lab", "lossy2.lab", "ext.lab").values()) == {0}
    assert _app_statuses(lab, "http://waf.lab:8081/app", 6) == [200] * 6
    assert _python(lab, "import psycopg\npsycopg.connect('postgresql://app@db.lab:5432/postgres', "
                        f"password={faults.PG_PASSWORD!r}); print('connected')").strip() == "connected"
    leaked = lab.run(["ss", "-Htn", "state", "close-wait"], timeout=5).stdout
    assert leaked.strip() == ""


def test_close_leaves_nothing_behind(lab_session: None) -> None:
    lab = FaultLab(Lab())
    try:
        for name in ("pg_out_of_slots", "close_wait_leak", "lossy_jittery_light", "tls_expired"):
            faults.BUILDERS[name](lab)
        names = [ns.name for ns in lab.lab.namespaces]
        pids = [int(pid) for name in names for pid in run(["ip", "netns", "pids", name]).stdout.split()]
        dirs = [lab.etc, lab.workdir, *lab._dirs]
        assert len(pids) >= 4  # postgres and its workers, the leaking client, the delayer
    finally:
        lab.close()
    assert not set(names) & set(list_namespaces())
    assert not [pid for pid in pids if alive(pid)]
    assert not [d for d in dirs if d.exists()]
