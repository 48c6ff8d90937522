"""The layered check against real misbehaving servers: the verdict names the right first broken layer."""

from __future__ import annotations

import time

import pytest

from console.diagnosis.verdict import judge
from probes.dns import parse_resolver
from probes.layers import check_once, layers_for
from probes.targets import parse_target
from tests.lab.servers import DNSBehaviour
from tests.layers.helpers import closed_port


@pytest.fixture
def resolver(dns_server):  # type: ignore[no-untyped-def]
    """A DNS server on 127.0.0.1 that knows the lab's names; tests add faults to it."""
    server = dns_server({"good.test": DNSBehaviour(cname="edge.test"),
                         "edge.test": DNSBehaviour(addresses=["127.0.0.1"])})
    return server


async def _verdict(target: str, resolvers: list[str], **kwargs):  # type: ignore[no-untyped-def]
    samples = await check_once(target, timeout=kwargs.pop("timeout", 2.0), system_resolvers=False,
                               resolvers=[parse_resolver(r) for r in resolvers], **kwargs)
    return samples, judge(target, samples)


@pytest.mark.parametrize(("text", "layers"), [
    ("api.test", ("dns",)), ("api.test:5432", ("dns", "tcp")), ("127.0.0.1:5432", ("tcp",)),
    ("http://api.test/", ("dns", "tcp", "http")), ("https://api.test/", ("dns", "tcp", "tls", "http")),
    ("https://[::1]:8443/", ("tcp", "tls", "http"))])
def test_layers_that_apply(text: str, layers: tuple[str, ...]) -> None:
    assert layers_for(parse_target(text)) == layers


async def test_healthy_https_target_runs_all_four_layers(resolver, tls_server, cert_lab) -> None:
    server = tls_server("good")
    samples, verdict = await _verdict(f"https://good.test:{server.port}/ok", [resolver.address],
                                      ca_file=str(cert_lab.ca_file))
    assert [s.kind for s in samples] == ["dns", "tcp", "tls", "http"]
    assert verdict.status == "healthy" and verdict.exit_code == 0, verdict
    assert verdict.first_broken_layer is None
    assert {name: s.state for name, s in verdict.layers.items()} == {
        "dns": "ok", "tcp": "ok", "tls": "ok", "http": "ok"}
    assert samples[0].fields["cname_chain"] == ["edge.test"]
    http_sample = samples[-1]
    assert http_sample.fields["dns_ms"] == samples[0].fields["time_ms"]  # HTTP did not resolve again
    assert server.requests == ["/ok"]


@pytest.mark.parametrize(("behaviour", "error"), [
    (DNSBehaviour(rcode="NXDOMAIN"), "nxdomain"), (DNSBehaviour(rcode="SERVFAIL"), "servfail"),
    (DNSBehaviour(rcode="REFUSED"), "refused"), (DNSBehaviour(addresses=["127.0.0.1"], delay_ms=3000), "timeout")])
async def test_dns_faults_stop_the_check_at_dns(dns_server, http_server, behaviour: DNSBehaviour, error: str) -> None:
    web = http_server()
    server = dns_server({"api.test": behaviour})
    started = time.monotonic()
    _samples, verdict = await _verdict(f"http://api.test:{web.port}/ok", [server.address], timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert verdict.status == "failed"
    assert verdict.first_broken_layer == "dns" and verdict.error == error
    assert verdict.layers["tcp"].state == "not-run" and verdict.layers["http"].state == "not-run"
    assert web.requests == []  # nothing was attempted past the broken layer


async def test_resolvers_that_disagree_degrade_the_dns_layer(dns_server, http_server) -> None:
    web = http_server()
    a = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.1"])}, host="127.0.0.1")
    b = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.66"])}, host="127.0.0.2")
    _samples, verdict = await _verdict(f"api.test:{web.port}", [a.address, b.address])
    assert verdict.status == "degraded" and verdict.exit_code == 1
    assert verdict.first_broken_layer == "dns" and verdict.error == "resolvers-disagree"
    assert "127.0.0.66" in (verdict.message or "")
    assert verdict.layers["tcp"].state == "ok"  # the first resolver's answer was used and works


async def test_one_resolver_down_degrades_dns(dns_server, http_server) -> None:
    web = http_server()
    a = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.1"])}, host="127.0.0.1")
    mute = dns_server({"api.test": DNSBehaviour(drop=True)}, host="127.0.0.2")
    _samples, verdict = await _verdict(f"api.test:{web.port}", [mute.address, a.address], timeout=0.5)
    assert verdict.status == "degraded"
    assert verdict.first_broken_layer == "dns" and verdict.error == "timeout"


async def test_refused_port_fails_at_tcp(resolver) -> None:
    _samples, verdict = await _verdict(f"good.test:{closed_port()}", [resolver.address])
    assert verdict.first_broken_layer == "tcp" and verdict.error == "refused"
    assert verdict.layers["dns"].state == "ok"


@pytest.mark.parametrize(("fault", "error"), [
    ("expired", "expired"), ("not_yet_valid", "not-yet-valid"), ("wrong_name", "hostname-mismatch"),
    ("self_signed", "self-signed"), ("missing_intermediate", "missing-intermediate")])
async def test_certificate_faults_fail_at_tls(resolver, tls_server, cert_lab, fault: str, error: str) -> None:
    server = tls_server(fault)
    _samples, verdict = await _verdict(f"https://good.test:{server.port}/ok", [resolver.address],
                                      ca_file=str(cert_lab.ca_file))
    assert verdict.first_broken_layer == "tls" and verdict.error == error
    assert "certificate verify failed" in (verdict.message or "")
    assert verdict.layers["http"].state == "not-run"
    assert server.requests == []


@pytest.mark.parametrize(("path", "error"), [
    ("/status/502", "http-502"), ("/status/504", "http-504"), ("/challenge", "challenge-redirect"),
    ("/login-redirect", "challenge-redirect"), ("/waf", "http-403"), ("/stall", "read-timeout"),
    ("/drip", "total-timeout"), ("/loop", "too-many-redirects")])
async def test_http_faults_fail_at_http(resolver, http_server, path: str, error: str) -> None:
    web = http_server()
    started = time.monotonic()
    _samples, verdict = await _verdict(f"http://good.test:{web.port}{path}", [resolver.address], timeout=1.0)
    assert time.monotonic() - started < 4.0
    assert verdict.status == "failed"
    assert verdict.first_broken_layer == "http" and verdict.error == error
    assert verdict.layers["tcp"].state == "ok"


async def test_slow_but_answering_server_is_healthy(resolver, http_server) -> None:
    web = http_server()
    samples, verdict = await _verdict(f"http://good.test:{web.port}/slow?ms=300", [resolver.address])
    assert verdict.healthy
    assert samples[-1].fields["ttfb_ms"] >= 300


async def test_intermittent_failure_over_several_attempts_is_degraded(resolver, http_server) -> None:
    web = http_server()
    target = f"good.test:{web.port}"
    good, _ = await _verdict(target, [resolver.address])
    web.stop()
    bad, _ = await _verdict(target, [resolver.address])
    verdict = judge(target, good + bad, attempts=2)
    assert verdict.status == "degraded"
    assert verdict.layers["tcp"].state == "warn" and "1 of 2" in verdict.layers["tcp"].summary


async def test_layers_as_a_periodic_probe(resolver, http_server) -> None:
    from probes.registry import stream
    from probes.runtime import ProbeSpec

    web = http_server()
    spec = ProbeSpec(kind="layers", target=f"http://good.test:{web.port}/ok", interval=0.1, timeout=1,
                     options={"resolvers": [resolver.address], "system_resolvers": False})
    probe = stream(spec)
    try:
        samples = [await anext(probe) for _ in range(6)]
    finally:
        await probe.aclose()
    assert [s.kind for s in samples] == ["dns", "tcp", "http"] * 2
    assert all(s.ok for s in samples)


def test_config_section_becomes_probe_options() -> None:
    from probes.layers import options_from_config

    assert options_from_config({}) == {"resolvers": [], "system_resolvers": True}
    assert options_from_config({"resolvers": ["127.0.0.1:5353"], "system_resolvers": False, "ca_file": "/x.pem"}) == {
        "resolvers": ["127.0.0.1:5353"], "system_resolvers": False, "ca_file": "/x.pem"}
    for bad in ({"resolvers": "127.0.0.1"}, {"resolvers": ["dns.google"]}, {"system_resolvers": "yes"},
                {"resolver": ["127.0.0.1"]}):
        with pytest.raises(ValueError):
            options_from_config(bad)


async def test_ipv6_loopback_target(http_server) -> None:
    web = http_server("::1")
    samples = await check_once(web.url("/ok"), timeout=2, system_resolvers=False)
    assert web.url("/ok").startswith("http://[::1]:")
    assert judge(web.url("/ok"), samples).healthy
    assert samples[0].fields["endpoint"] == f"[::1]:{web.port}"
