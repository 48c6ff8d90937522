"""The dns probe against real DNS servers on 127.0.0.x: rcodes, TTL, CNAMEs, timeouts, disagreement."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from probes import dns as dns_probe
from probes.registry import stream
from probes.runtime import ProbeSpec
from tests.lab.servers import DNSBehaviour


def _resolver(server) -> dns_probe.Resolver:  # type: ignore[no-untyped-def]
    return dns_probe.parse_resolver(server.address)


async def test_answer_ttl_and_cname_chain(dns_server) -> None:
    server = dns_server({"www.test": DNSBehaviour(cname="edge.test", ttl=60),
                         "edge.test": DNSBehaviour(addresses=["127.0.0.8", "::1"], ttl=300)})
    [sample] = await dns_probe.resolve("www.test:443", timeout=2, resolvers=[_resolver(server)], system=False)
    assert sample.ok, sample.message
    assert sample.kind == "dns" and sample.target == "www.test:443"
    assert sample.fields["rcode"] == "NOERROR"
    assert sample.fields["addresses"] == ["127.0.0.8", "::1"]
    assert sample.fields["cname_chain"] == ["edge.test"]
    assert sample.fields["ttl"] == 60  # the smallest TTL along the chain: when the answer may change
    assert sample.fields["resolver"] == server.address
    assert sample.fields["source"] == "user"
    assert 0 < sample.fields["time_ms"] < 2000
    assert sample.fields["disagrees_with"] == []


@pytest.mark.parametrize(("rcode", "error"), [("NXDOMAIN", "nxdomain"), ("SERVFAIL", "servfail"),
                                              ("REFUSED", "refused")])
async def test_error_rcodes_are_named(dns_server, rcode: str, error: str) -> None:
    server = dns_server({"api.test": DNSBehaviour(rcode=rcode)})
    [sample] = await dns_probe.resolve("api.test", timeout=2, resolvers=[_resolver(server)], system=False)
    assert sample.error == error
    assert sample.fields["rcode"] == rcode
    assert rcode in (sample.message or "") and server.address in (sample.message or "")


async def test_slow_resolver_is_a_timeout_within_the_limit(dns_server) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.1"], delay_ms=3000)})
    started = time.monotonic()
    [sample] = await dns_probe.resolve("api.test", timeout=0.5, resolvers=[_resolver(server)], system=False)
    assert time.monotonic() - started < 2.5
    assert sample.error == "timeout"
    assert sample.fields["rcode"] is None


async def test_slow_but_within_limit_is_measured(dns_server) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.1"], delay_ms=200)})
    [sample] = await dns_probe.resolve("api.test", timeout=2, resolvers=[_resolver(server)], system=False)
    assert sample.ok
    assert sample.fields["time_ms"] >= 200


async def test_resolvers_that_disagree_are_flagged(dns_server) -> None:
    honest = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, host="127.0.0.1")
    stale = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.99"])}, host="127.0.0.2")
    agree = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, host="127.0.0.3")
    samples = await dns_probe.resolve("api.test", timeout=2, system=False,
                                      resolvers=[_resolver(honest), _resolver(stale), _resolver(agree)])
    by_resolver = {s.fields["resolver"]: s for s in samples}
    assert by_resolver[honest.address].fields["disagrees_with"] == [stale.address]
    assert by_resolver[agree.address].fields["disagrees_with"] == [stale.address]
    assert sorted(by_resolver[stale.address].fields["disagrees_with"]) == sorted([honest.address, agree.address])


async def test_nxdomain_from_one_resolver_disagrees_with_an_answer(dns_server) -> None:
    good = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, host="127.0.0.1")
    bad = dns_server({}, host="127.0.0.2")  # NXDOMAIN for everything
    samples = await dns_probe.resolve("api.test", timeout=2, system=False, resolvers=[_resolver(good), _resolver(bad)])
    assert [s.fields["disagrees_with"] for s in samples] == [[bad.address], [good.address]]


async def test_a_timeout_is_not_counted_as_disagreement(dns_server) -> None:
    good = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, host="127.0.0.1")
    mute = dns_server({"api.test": DNSBehaviour(drop=True)}, host="127.0.0.2")
    samples = await dns_probe.resolve("api.test", timeout=0.4, system=False,
                                      resolvers=[_resolver(good), _resolver(mute)])
    assert [s.error for s in samples] == [None, "timeout"]
    assert all(s.fields["disagrees_with"] == [] for s in samples)


async def test_hosts_file_answers_instead_of_system_resolvers(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.42  api.test api  # pinned\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")  # loopback, and must not be asked at all
    [sample] = await dns_probe.resolve("api.test", timeout=1, system=True, hosts_file=str(hosts),
                                       resolv_conf=str(resolv))
    assert sample.ok
    assert sample.fields["source"] == "hosts" and sample.fields["addresses"] == ["127.0.0.42"]


async def test_stale_hosts_entry_disagrees_with_named_resolver(dns_server, tmp_path: Path) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.99"])})
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.42  api.test\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    pinned, asked = await dns_probe.resolve("api.test", timeout=1, resolvers=[_resolver(server)], system=True,
                                            hosts_file=str(hosts), resolv_conf=str(resolv))
    assert pinned.fields["source"] == "hosts" and asked.fields["addresses"] == ["127.0.0.99"]
    assert pinned.fields["disagrees_with"] == [server.address]
    assert asked.fields["disagrees_with"] == [str(hosts)]


async def test_hosts_file_is_ignored_without_system_resolution(dns_server, tmp_path: Path) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.99"])})
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.42  api.test\n")
    [sample] = await dns_probe.resolve("api.test", timeout=1, resolvers=[_resolver(server)], system=False,
                                       hosts_file=str(hosts))
    assert sample.fields["source"] == "user" and sample.fields["addresses"] == ["127.0.0.99"]


async def test_ip_literal_needs_no_lookup() -> None:
    [sample] = await dns_probe.resolve("127.0.0.1:80", timeout=1, system=False)
    assert sample.ok and sample.fields["literal"] is True and sample.fields["addresses"] == ["127.0.0.1"]


async def test_system_resolvers_are_asked(dns_server, tmp_path: Path) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])}, port=0)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")  # port 53 on loopback: nothing there in the test
    samples = await dns_probe.resolve("api.test", timeout=0.5, system=True, resolv_conf=str(resolv),
                                      resolvers=[_resolver(server)], hosts_file="")
    assert [s.fields["source"] for s in samples] == ["system", "user"]
    assert samples[0].fields["resolver"] == "127.0.0.1:53"
    assert samples[1].ok


def test_system_resolvers_come_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example.internal\nnameserver 127.0.0.53\nnameserver ::1\n")
    assert [(r.ip, r.port, r.source) for r in dns_probe.system_resolvers(str(conf))] == [
        ("127.0.0.53", 53, "system"), ("::1", 53, "system")]


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.2:5353", ("127.0.0.2", 5353)),
    ("[::1]:5300", ("::1", 5300)), ("::1", ("::1", 53))])
def test_parse_resolver(text: str, expected: tuple[str, int]) -> None:
    resolver = dns_probe.parse_resolver(text)
    assert (resolver.ip, resolver.port) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:dns", "127.0.0.1:0", "[::1"])
def test_parse_resolver_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        dns_probe.parse_resolver(text)


async def test_stream_through_the_registry(dns_server) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.10"])})
    spec = ProbeSpec(kind="dns", target="api.test", interval=0.1, timeout=1,
                     options={"resolvers": [server.address], "system_resolvers": False})
    probe = stream(spec)
    try:
        first = await anext(probe)
        second = await anext(probe)
    finally:
        await probe.aclose()
    assert first.fields["addresses"] == second.fields["addresses"] == ["127.0.0.10"]
    assert len(server.queries) >= 4  # A and AAAA, twice


async def test_the_network_rule_is_enforced_in_tests(tmp_path: Path) -> None:
    """The autouse guard refuses a non-loopback resolver before any packet leaves."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.1\n")  # TEST-NET-1: would never be contacted anyway
    [sample] = await dns_probe.resolve("api.test", timeout=0.5, system=True, resolv_conf=str(resolv), hosts_file="")
    assert not sample.ok
    assert "only loopback is allowed" in (sample.message or "")
