"""Alert rules for what was seen: thresholds moved to what was measured, checked and unit-tested by promtool."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from console.incident.alerts import build_rules, promtool, write_and_check
from probes import dns as dns_probe
from probes.layers import check_once
from probes.samples import Sample
from tests.lab.servers import DNSBehaviour, FakeDNSServer, MisbehavingHTTPServer, TLSCertLab


def _promtool_ok(directory: Path) -> None:
    checked = subprocess.run(["promtool", "check", "rules", "alerts.yml"], cwd=directory, capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=directory, capture_output=True,
                            text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def _checks(target: str, n: int, **kwargs: object) -> list[Sample]:
    out: list[Sample] = []
    for _ in range(n):
        out += await check_once(target, timeout=2.0, **kwargs)
    return out


async def test_rules_from_real_faults_fire_on_the_measured_series_only(
        tmp_path: Path, http_server: Callable[..., MisbehavingHTTPServer],
        tls_server: Callable[..., MisbehavingHTTPServer], dns_server: Callable[..., FakeDNSServer],
        cert_lab: TLSCertLab) -> None:
    plain = http_server()
    expired = tls_server("expired")
    resolver = dns_server({"slow.lab": DNSBehaviour(addresses=["127.0.0.1"], delay_ms=700)})
    slow_dns = dict(resolvers=[dns_probe.parse_resolver(resolver.address)], system_resolvers=False, hosts_file="")
    gateway, slow, healthy = plain.url("/status/504"), plain.url("/slow?ms=400"), plain.url("/ok")
    named = f"http://slow.lab:{plain.port}/ok"
    results = await asyncio.gather(
        _checks(gateway, 10), _checks(slow, 5), _checks(healthy, 10),
        _checks(expired.url("/ok"), 2, ca_file=str(cert_lab.ca_file)), _checks(named, 3, **slow_dns))
    bad = [s for group in (results[0], results[1], results[3], results[4]) for s in group]
    good = results[2] + [Sample(s.kind, slow, s.ts, s.fields) for s in results[2] if s.kind == "http"]
    rules = build_rules("lab faults", bad, good)
    names = {(r.alert, r.labels["instance"]) for r in rules.rules}
    assert ("WarroomHTTP5xx", gateway) in names and ("WarroomTargetErrorRate", gateway) in names
    assert ("WarroomTargetSlow", slow) in names  # 400 ms against a healthy few ms: threshold moved down
    assert ("WarroomCertExpiry", expired.url("/ok")) in names
    assert ("WarroomDNSSlow", named) in names
    assert all(instance != healthy for _, instance in names)  # nothing was wrong with it: no rule
    slow_rule = next(r for r in rules.rules if r.alert == "WarroomTargetSlow")
    assert "lowered" in slow_rule.measured and float(slow_rule.expr.rsplit(">", 1)[1]) < 0.4
    write_and_check(rules, tmp_path, check=False)
    _promtool_ok(tmp_path)


def test_every_rule_kind_passes_promtool_and_the_tests_can_fail(tmp_path: Path) -> None:
    now = time.time()
    bad: list[Sample] = []
    for i in range(60):
        t = now - 60 + i
        bad.append(Sample("icmp", "10.0.0.1", t, {"rtt_ms": 1.0}) if i % 10 else
                   Sample("icmp", "10.0.0.1", t, {}, error="timeout", message="no reply"))
        bad.append(Sample("pg_pool", "orders", t, {"used": 97, "max_connections": 100}))
        bad.append(Sample("conns", "", t, {"conntrack_count": 940, "conntrack_max": 1000}))
    rules = build_rules("host pressure", bad, findings=[{"layer": "path", "severity": "warning", "title": "loss"}])
    assert {r.alert for r in rules.rules} >= {"WarroomTCPRetransmissions", "WarroomConntrackFull",
                                              "WarroomPostgresConnections", "WarroomTargetErrorRate"}
    write_and_check(rules, tmp_path, check=False)
    _promtool_ok(tmp_path)
    # A rule that does not fire on the measured series fails its test: promtool is really judging.
    text = (tmp_path / "alerts.yml").read_text().replace("> 0.85", "> 0.99")
    (tmp_path / "alerts.yml").write_text(text)
    assert not promtool("test", "rules", "alerts.test.yml", cwd=tmp_path).ok


def test_thresholds_move_to_what_was_measured() -> None:
    now = time.time()
    rare = [Sample("tcp", "db:5432", now + i, {"rtt_ms": 1.0}) if i % 33 else
            Sample("tcp", "db:5432", now + i, {}, error="reset", message="reset") for i in range(99)]
    rule = build_rules("x", rare).rules[0]
    assert rule.alert == "WarroomTargetErrorRate" and "moved from 5% to 1.5%" in rule.measured
    noise = [Sample("tcp", "db:5432", now + i, {"rtt_ms": 1.0}) for i in range(200)]
    noise.append(Sample("tcp", "db:5432", now + 200, {}, error="reset", message="reset"))
    quiet = build_rules("x", noise)
    assert quiet.rules == [] and "noise" in quiet.skipped[0]
    assert build_rules("x", []).rules == []
