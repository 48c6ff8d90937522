"""Diagnosis rules for the layers, fed with Samples measured from the lab's real servers."""

from __future__ import annotations

import pytest

from console.diagnosis import layers as rules_layers
from console.diagnosis.registry import RULES, diagnose
from console.engine.store import Store
from probes import dns as dns_probe
from probes import http, tls
from tests.lab.servers import DNSBehaviour

LAYER_RULES = {name: RULES[name] for name in (
    "tls_target", "tls_expiring_soon", "http_challenge_redirect", "http_status", "http_no_response", "dns_target")}


def _findings(*samples):  # type: ignore[no-untyped-def]
    store = Store()
    for sample in samples:
        store.add(sample)
    return diagnose(store, LAYER_RULES)


def test_rules_are_registered() -> None:
    assert set(LAYER_RULES) <= set(RULES)
    assert rules_layers.WINDOW_S > 0


async def test_missing_intermediate_is_named_with_the_fix(tls_server, cert_lab) -> None:
    server = tls_server("missing_intermediate")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    [finding] = _findings(sample)
    assert finding.rule == "tls_certificate_rejected" and finding.severity == "critical"
    assert "intermediate" in finding.title
    assert "full chain" in finding.next_step
    assert any("unable to get local issuer certificate" in e for e in finding.evidence)


async def test_good_certificate_gives_no_finding(tls_server, cert_lab) -> None:
    server = tls_server("good")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    assert _findings(sample) == []


async def test_challenge_redirect_finding(http_server) -> None:
    server = http_server()
    [finding] = _findings(await http.measure(server.url("/challenge"), 3))
    assert finding.rule == "http_challenge_redirect"
    assert "challenge" in finding.title


async def twice(url: str, timeout: float = 3):  # type: ignore[no-untyped-def]
    """Two requests: a status or a timeout is judged on more than one answer."""
    return [await http.measure(url, timeout), await http.measure(url, timeout)]


async def test_waf_403_is_told_apart_from_a_plain_403(http_server) -> None:
    server = http_server()
    [waf] = _findings(*await twice(server.url("/waf")))
    [plain] = _findings(*await twice(server.url("/status/403")))
    assert waf.rule == plain.rule == "http_waf_block"
    assert waf.confidence > plain.confidence
    assert "from a WAF" in waf.title


async def test_504_versus_no_response_versus_client_gave_up(http_server) -> None:
    """504: the proxy gave up on its backend. No response at all: the server stalls. 499: the client gave up."""
    server = http_server()
    [gateway] = _findings(*await twice(server.url("/status/504")))
    [stalled] = _findings(*await twice(server.url("/stall"), 0.6))
    [logged_499] = _findings(*await twice(server.url("/status/499")))
    assert "504" in gateway.title and "proxy" in gateway.title
    assert "sends no response" in stalled.title and "2 of 2" in stalled.title
    assert "limits: connect 0.3 s, read 0.48 s" in " ".join(stalled.evidence)  # words, not a dict's repr
    assert "client gave up first" in logged_499.title and "499" in logged_499.title
    assert gateway.next_step != stalled.next_step


@pytest.mark.parametrize("path", ["/ok", "/see-other", "/slow?ms=100"])
async def test_healthy_http_gives_no_finding(http_server, path: str) -> None:
    server = http_server()
    assert _findings(await http.measure(server.url(path), 3)) == []


async def test_disagreeing_resolvers_finding(dns_server) -> None:
    a = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, host="127.0.0.1")
    b = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.99"])}, host="127.0.0.2")
    samples = await dns_probe.resolve("api.test", timeout=2, system=False,
                                      resolvers=[dns_probe.parse_resolver(a.address),
                                                 dns_probe.parse_resolver(b.address)])
    [finding] = _findings(*samples)
    assert finding.rule == "dns_resolvers_disagree"
    assert any("127.0.0.99" in line for line in finding.evidence)
    assert any("127.0.0.10" in line for line in finding.evidence)


async def test_dns_failure_severity_depends_on_how_many_resolvers_fail(dns_server) -> None:
    dead = dns_server({"api.test": DNSBehaviour(rcode="SERVFAIL")}, host="127.0.0.1")
    alive = dns_server({"api.test": DNSBehaviour(rcode="SERVFAIL")}, host="127.0.0.2")
    both = await dns_probe.resolve("api.test", timeout=2, system=False,
                                   resolvers=[dns_probe.parse_resolver(dead.address),
                                              dns_probe.parse_resolver(alive.address)])
    [finding] = _findings(*both)
    assert finding.rule == "dns_lookup_failing" and finding.severity == "critical"
    assert "SERVFAIL" in finding.title
    alive.set("api.test", DNSBehaviour(addresses=["127.0.0.10"]))
    mixed = await dns_probe.resolve("api.test", timeout=2, system=False,
                                    resolvers=[dns_probe.parse_resolver(dead.address),
                                               dns_probe.parse_resolver(alive.address)])
    [mixed_finding] = _findings(*mixed)  # one resolver fails, one answers: one finding, they disagree
    assert mixed_finding.layer == "dns" and mixed_finding.severity == "warning"
    assert "disagree" in mixed_finding.title and "SERVFAIL" in mixed_finding.title
