"""The tcp, icmp and http probes look names up on their own clock: a slow or failing resolver is DNS, not the connect.

The resolver is a real DNS server (FakeDNSServer) on port 53 of a loopback
address of its own, named as the only nameserver of a resolv.conf the probes
are pointed at (options resolv_conf, hosts_file), exactly as /etc/resolv.conf
would name it. No query leaves loopback.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from probes import http as http_probe
from probes import icmp as icmp_probe
from probes import resolve
from probes import tcp as tcp_probe
from probes.runtime import ProbeSpec
from tests.lab.servers import DNSBehaviour, FakeDNSServer, MisbehavingHTTPServer

SLOW_MS = 1500


@pytest.fixture
def resolver(dns_server: Callable[..., FakeDNSServer], tmp_path: Path) -> Iterator[tuple[FakeDNSServer, Path]]:
    """A DNS server on 127.53.x.y:53 and a resolv.conf naming it alone."""
    for _attempt in range(10):
        address = f"127.53.{os.getpid() % 250 + 1}.{random.randint(1, 250)}"
        try:
            server = dns_server({}, host=address, port=53)
            break
        except OSError:
            continue
    else:
        pytest.fail("no loopback address with port 53 free for the test resolver")
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {server.host}\n")
    yield server, conf


def _options(conf: Path, tmp_path: Path, **extra: object) -> dict[str, object]:
    hosts = tmp_path / "hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1 localhost\n")
    return {"resolv_conf": str(conf), "hosts_file": str(hosts), **extra}


def _lookup(conf: Path, tmp_path: Path, timeout: float = 3.0) -> resolve.Lookup:
    return resolve.Lookup.from_options(_options(conf, tmp_path, resolve_timeout=timeout))  # type: ignore[arg-type]


async def test_a_lookup_slower_than_the_connect_timeout_is_not_a_connect_timeout(resolver, tmp_path) -> None:
    server, conf = resolver
    server.set("slow.test", DNSBehaviour(addresses=["127.0.0.1"], delay_ms=SLOW_MS))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        sample = await tcp_probe.measure(f"slow.test:{port}", timeout=0.5, lookup=_lookup(conf, tmp_path))
    assert sample.ok, sample.message  # the old probe: "timeout", the 0.5 s spent waiting for the resolver
    assert sample.fields["resolve_ms"] >= SLOW_MS  # type: ignore[operator]
    assert sample.fields["address"] == "127.0.0.1"
    assert sample.fields["connect_ms"] < 100  # type: ignore[operator]  # the connect alone
    assert sample.fields["rtt_ms"] < 100  # type: ignore[operator]


async def test_the_tcp_stream_allows_the_lookup_its_own_time(resolver, tmp_path) -> None:
    server, conf = resolver
    server.set("slow.test", DNSBehaviour(addresses=["127.0.0.1"], delay_ms=SLOW_MS))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        spec = ProbeSpec("tcp", f"slow.test:{listener.getsockname()[1]}", interval=0.1, timeout=1.0,
                         options=_options(conf, tmp_path))  # type: ignore[arg-type]
        stream = tcp_probe.stream(spec)
        try:
            sample = await anext(stream)
        finally:
            await stream.aclose()
    assert sample.ok, sample.message
    assert sample.fields["resolve_ms"] >= SLOW_MS  # type: ignore[operator]


async def test_a_lookup_past_its_own_timeout_is_a_dns_timeout(resolver, tmp_path) -> None:
    server, conf = resolver
    server.set("slow.test", DNSBehaviour(addresses=["127.0.0.1"], delay_ms=3000))
    sample = await tcp_probe.measure("slow.test:80", timeout=2.0, lookup=_lookup(conf, tmp_path, timeout=0.5))
    assert sample.error == "dns"
    assert sample.fields["dns_error"] == "timeout"
    assert 450 <= sample.fields["resolve_ms"] < 1500  # type: ignore[operator]
    assert "slow.test" in (sample.message or "") and server.host in (sample.message or "")


BEHAVIOURS = {
    "nxdomain": (DNSBehaviour(rcode="NXDOMAIN"), "does not exist"),
    "servfail": (DNSBehaviour(rcode="SERVFAIL"), "SERVFAIL"),
    "refused": (DNSBehaviour(rcode="REFUSED"), "REFUSED"),
    "no-answer": (DNSBehaviour(addresses=[]), "no A or AAAA record"),
}


@pytest.mark.parametrize("probe", ["tcp", "icmp", "http"])
@pytest.mark.parametrize("kind", list(BEHAVIOURS))
async def test_each_failed_lookup_is_named_with_the_resolvers_own_words(resolver, tmp_path, probe: str,
                                                                        kind: str) -> None:
    server, conf = resolver
    behaviour, words = BEHAVIOURS[kind]
    server.set("api.test", behaviour)
    lookup = _lookup(conf, tmp_path)
    if probe == "tcp":
        sample = await tcp_probe.measure("api.test:80", timeout=1.0, lookup=lookup)
    elif probe == "http":
        sample = await http_probe.measure("http://api.test:80/ok", 2.0, lookup=lookup)
    else:
        spec = ProbeSpec("icmp", "api.test", options=_options(conf, tmp_path))  # type: ignore[arg-type]
        icmp = icmp_probe.IcmpProbe(spec, "local")
        try:
            sample = await icmp.measure(1.0)
        finally:
            icmp.close()
    assert sample.kind == probe
    assert sample.error == "dns", (sample.error, sample.message)
    assert sample.fields["dns_error"] == kind
    assert isinstance(sample.fields["resolve_ms"], float)
    assert words in (sample.message or ""), sample.message
    assert server.host in (sample.message or "")  # which resolver said so


async def test_icmp_echo_time_excludes_a_slow_lookup(resolver, tmp_path) -> None:
    server, conf = resolver
    server.set("slow.test", DNSBehaviour(addresses=["127.0.0.1"], delay_ms=SLOW_MS))
    spec = ProbeSpec("icmp", "slow.test", options=_options(conf, tmp_path))  # type: ignore[arg-type]
    icmp = icmp_probe.IcmpProbe(spec, "local")
    try:
        sample = await icmp.measure(0.5)  # the echo's own timeout is shorter than the lookup
    finally:
        icmp.close()
    assert sample.ok, sample.message
    assert sample.fields["resolve_ms"] >= SLOW_MS  # type: ignore[operator]
    assert sample.fields["rtt_ms"] < 100  # type: ignore[operator]


async def test_http_limits_and_total_exclude_a_slow_lookup(resolver, tmp_path,
                                                           http_server: Callable[..., MisbehavingHTTPServer]) -> None:
    server, conf = resolver
    web = http_server()
    server.set("slow.test", DNSBehaviour(addresses=["127.0.0.1"], delay_ms=SLOW_MS))
    # A total limit of 1 s: the old probe spent it on the 1.5 s lookup and called it "no address within 0.5 s".
    sample = await http_probe.measure(f"http://slow.test:{web.port}/ok", 1.0, lookup=_lookup(conf, tmp_path))
    assert sample.ok and sample.fields["status"] == 200, sample.message
    assert sample.fields["resolve_ms"] >= SLOW_MS  # type: ignore[operator]
    assert sample.fields["dns_ms"] == sample.fields["resolve_ms"]
    assert sample.fields["total_ms"] < 500  # type: ignore[operator]


async def test_hosts_file_answers_without_asking_dns(resolver, tmp_path) -> None:
    server, conf = resolver
    (tmp_path / "hosts").write_text("127.0.0.1 pinned.test\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sample = await tcp_probe.measure(f"pinned.test:{listener.getsockname()[1]}", timeout=1.0,
                                         lookup=_lookup(conf, tmp_path))
    assert sample.ok and sample.fields["address"] == "127.0.0.1"
    assert isinstance(sample.fields["resolve_ms"], float)
    assert server.queries == []


async def test_an_address_needs_no_lookup(resolver, tmp_path) -> None:
    server, conf = resolver
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sample = await tcp_probe.measure(f"127.0.0.1:{listener.getsockname()[1]}", timeout=1.0,
                                         lookup=_lookup(conf, tmp_path))
    assert sample.ok and "resolve_ms" not in sample.fields
    assert server.queries == []


async def test_a_resolv_conf_without_nameservers_says_so(tmp_path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# nothing here\n")
    sample = await tcp_probe.measure("api.test:80", timeout=1.0, lookup=_lookup(conf, tmp_path))
    assert sample.error == "dns" and sample.fields["dns_error"] == "no-resolver"
    assert "nameserver" in (sample.message or "")


async def test_a_hosts_file_edited_between_ticks_answers_with_its_new_address(resolver, tmp_path) -> None:
    """The hosts file is read again when it changes (an on-call engineer pinning a name mid-incident)."""
    server, conf = resolver
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 pinned.test\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        first = await tcp_probe.measure(f"pinned.test:{port}", timeout=1.0, lookup=_lookup(conf, tmp_path))
        hosts.write_text("127.0.0.2 pinned.test   # moved\n")
        second = await tcp_probe.measure(f"pinned.test:{port}", timeout=1.0, lookup=_lookup(conf, tmp_path))
    assert first.fields["address"] == "127.0.0.1" and second.fields["address"] == "127.0.0.2"
    assert server.queries == []


async def test_a_fifo_as_hosts_file_or_resolv_conf_is_said_and_never_waited_on(tmp_path) -> None:
    """A FIFO where a file goes: opening one waits for a writer that never comes."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    lookup = resolve.Lookup.from_options({"resolv_conf": str(fifo), "hosts_file": str(fifo)})
    sample = await tcp_probe.measure("api.test:80", timeout=1.0, lookup=lookup)
    assert sample.error == "dns" and sample.fields["dns_error"] == "no-resolver"
    assert "not a regular file" in (sample.message or "")
    assert resolve.hosts_lookup("api.test", str(fifo)) == []
