"""The lab's servers misbehave exactly as documented, on any loopback address, and stop promptly."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.lab.servers import CHALLENGE_PATH, DNSBehaviour, FakeDNSServer, MisbehavingHTTPServer, StallServer


def _get(url: str, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                         _NoRedirect())  # see the 302 itself
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def test_http_faults_answer_as_documented(http_server) -> None:
    server = http_server("127.0.0.3")  # any 127.0.0.x works, as a namespace address would
    assert server.url().startswith("http://127.0.0.3:")
    assert _get(server.url("/ok")) == (200, b"ok\n")
    assert _get(server.url("/status/502"))[0] == 502
    assert _get(server.url("/status/504"))[0] == 504
    status, _ = _get(server.url("/challenge"))
    assert status == 302
    assert _get(server.url("/waf"))[0] == 403
    started = time.monotonic()
    assert _get(server.url("/slow?ms=300"))[0] == 200
    assert time.monotonic() - started >= 0.3
    assert server.requests[:4] == ["/ok", "/status/502", "/status/504", "/challenge"]
    assert CHALLENGE_PATH.startswith("/cdn-cgi/")


def test_stalling_paths_stall_and_stop_promptly(http_server) -> None:
    server = http_server()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _get(server.url("/stall"), timeout=0.5)
    started = time.monotonic()
    server.stop()  # must not wait for the stalled handler
    assert time.monotonic() - started < 2.0


def test_stall_server_accepts_and_says_nothing(stall_server) -> None:
    server = stall_server("127.0.0.4")
    with socket.create_connection((server.host, server.port), timeout=2) as conn:
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(1)


@pytest.mark.parametrize("fault", ["good", "expired", "wrong_name", "self_signed", "missing_intermediate"])
def test_tls_servers_present_the_planned_certificate(tls_server, cert_lab, fault: str) -> None:
    server = tls_server(fault)
    ctx = ssl.create_default_context(cafile=str(cert_lab.ca_file))
    if fault == "good":
        assert _get(server.url("/ok"), context=ctx)[0] == 200
    else:
        with pytest.raises(urllib.error.URLError) as info:
            _get(server.url("/ok"), context=ctx)
        assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def _ask(server: FakeDNSServer, name: str, tcp: bool = False, timeout: float = 2.0) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    ask = dns.query.tcp if tcp else dns.query.udp
    return ask(query, server.host, timeout=timeout, port=server.port)


def test_dns_server_answers_on_udp_and_tcp(dns_server) -> None:
    server = dns_server({"api.test": DNSBehaviour(addresses=["127.0.0.9"]),
                         "gone.test": DNSBehaviour(rcode="SERVFAIL")}, host="127.0.0.5")
    for tcp in (False, True):
        answer = _ask(server, "api.test", tcp=tcp)
        assert answer.rcode() == dns.rcode.NOERROR
        assert [r.address for r in answer.answer[0]] == ["127.0.0.9"]
    assert _ask(server, "gone.test").rcode() == dns.rcode.SERVFAIL
    assert _ask(server, "unknown.test").rcode() == dns.rcode.NXDOMAIN


def test_dns_server_can_stay_silent(dns_server) -> None:
    server = dns_server({"quiet.test": DNSBehaviour(drop=True)})
    with pytest.raises(dns.exception.Timeout):
        _ask(server, "quiet.test", timeout=0.3)


def test_servers_bind_the_address_they_are_given() -> None:
    servers = [MisbehavingHTTPServer("127.0.0.7"), StallServer("127.0.0.7"), FakeDNSServer("127.0.0.7")]
    try:
        assert all(s.host == "127.0.0.7" and s.port > 0 for s in servers)
    finally:
        for s in servers:
            s.start().stop()
