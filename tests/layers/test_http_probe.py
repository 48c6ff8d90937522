"""The http probe against the misbehaving HTTP server: phases, statuses, redirects, named timeouts."""

from __future__ import annotations

import time

import pytest

from probes import http
from probes.registry import stream
from probes.runtime import ProbeSpec
from tests.layers.helpers import closed_port


async def test_phases_of_a_good_request(http_server) -> None:
    server = http_server()
    sample = await http.measure(server.url("/ok"), 3)
    assert sample.ok and sample.kind == "http"
    f = sample.fields
    assert f["status"] == 200 and f["reason"] == "OK" and f["http_version"] == "HTTP/1.1"
    for phase in ("connect_ms", "ttfb_ms", "transfer_ms", "total_ms"):
        assert isinstance(f[phase], float) and f[phase] >= 0, phase
    assert f["tls_ms"] is None  # plain HTTP has no handshake
    assert f["connect_ms"] + f["ttfb_ms"] <= f["total_ms"]
    assert f["bytes"] == 3
    assert f["timeouts"] == {"connect": 1.5, "read": 2.4, "write": 1.5, "pool": 0.75, "total": 3}


async def test_slow_server_shows_up_in_time_to_first_byte(http_server) -> None:
    server = http_server()
    sample = await http.measure(server.url("/slow?ms=400"), 3)
    assert sample.ok
    assert 400 <= sample.fields["ttfb_ms"] < 1500
    assert sample.fields["connect_ms"] < 200  # the slowness is the server's, not the network's


@pytest.mark.parametrize("status", [502, 504])
async def test_gateway_errors_are_reported_with_their_status(http_server, status: int) -> None:
    server = http_server()
    sample = await http.measure(server.url(f"/status/{status}"), 3)
    assert sample.ok  # the exchange completed; the verdict judges the status
    assert sample.fields["status"] == status


@pytest.mark.parametrize(("path", "flagged"), [("/challenge", True), ("/login-redirect", True), ("/see-other", False)])
async def test_redirects_and_challenge_flag(http_server, path: str, flagged: bool) -> None:
    server = http_server()
    sample = await http.measure(server.url(path), 3)
    assert sample.ok
    [hop] = sample.fields["redirects"]
    assert hop["status"] in (302, 303)
    assert sample.fields["challenge_redirect"] is flagged
    assert sample.fields["status"] == 200  # the page at the end of the redirect
    assert sample.fields["final_url"] == hop["location"]
    if flagged:
        assert sample.fields["challenge_location"] == hop["location"]


async def test_waf_block_is_recognised(http_server) -> None:
    server = http_server()
    sample = await http.measure(server.url("/waf"), 3)
    assert sample.fields["status"] == 403
    assert "x-amzn-waf" in sample.fields["waf_hint"]


async def test_stall_before_headers_is_a_read_timeout_in_ttfb(http_server) -> None:
    server = http_server()
    started = time.monotonic()
    sample = await http.measure(server.url("/stall"), 1.0)
    assert time.monotonic() - started < 2.5  # its own limits (1 s) plus slack for a busy CI; a hang would be unbounded
    assert sample.error == "read-timeout"
    assert sample.fields["phase"] == "ttfb"
    assert "ReadTimeout" in (sample.message or "")


async def test_stall_in_body_is_a_read_timeout_in_transfer(http_server) -> None:
    server = http_server()
    sample = await http.measure(server.url("/stall-body"), 1.0)
    assert sample.error == "read-timeout"
    assert sample.fields["phase"] == "transfer"
    assert sample.fields["ttfb_ms"] is not None  # headers did arrive


async def test_drip_never_trips_read_timeout_but_total_deadline_stops_it(http_server) -> None:
    server = http_server()
    started = time.monotonic()
    sample = await http.measure(server.url("/drip"), 1.0)
    assert time.monotonic() - started < 2.5
    assert sample.error == "total-timeout"
    assert sample.fields["phase"] == "transfer"


async def test_server_that_accepts_and_never_speaks(stall_server) -> None:
    server = stall_server()
    started = time.monotonic()
    sample = await http.measure(f"http://127.0.0.1:{server.port}/", 0.8)
    assert time.monotonic() - started < 2.3
    assert sample.error == "read-timeout" and sample.fields["phase"] == "ttfb"


async def test_explicit_limits_name_the_phase_that_ran_out(http_server) -> None:
    server = http_server()
    sample = await http.measure(server.url("/slow?ms=2000"), 3, timeouts={"read": 0.3})
    assert sample.error == "read-timeout"
    assert sample.fields["timeouts"]["read"] == 0.3
    assert "read timeout 0.3 s" in (sample.message or "")


async def test_refused(http_server) -> None:
    sample = await http.measure(f"http://127.0.0.1:{closed_port()}/", 2)
    assert sample.error == "refused" and sample.fields["phase"] == "connect"
    assert "Connection refused" in (sample.message or "") or "Connect call failed" in (sample.message or "")


async def test_https_with_address_and_test_ca(tls_server, cert_lab) -> None:
    server = tls_server("good")
    sample = await http.measure(f"https://good.test:{server.port}/ok", 3, address="127.0.0.1",
                                ca_file=str(cert_lab.ca_file))
    assert sample.ok, sample.message
    assert sample.fields["tls_ms"] > 0 and sample.fields["status"] == 200
    assert server.requests == ["/ok"]


async def test_https_certificate_problem_is_a_tls_error(tls_server, cert_lab) -> None:
    server = tls_server("wrong_name")
    sample = await http.measure(f"https://good.test:{server.port}/ok", 3, address="127.0.0.1",
                                ca_file=str(cert_lab.ca_file))
    assert sample.error == "tls" and sample.fields["phase"] == "tls"
    assert "Hostname mismatch" in (sample.message or "")


async def test_secrets_never_appear_in_the_sample(http_server) -> None:
    server = http_server()
    url = f"http://alice:hunter2@127.0.0.1:{server.port}/challenge?access_token=s3cr3t&page=2"
    sample = await http.measure(url, 3)
    text = sample.to_json()
    assert "hunter2" not in text and "s3cr3t" not in text and "alice" not in text
    assert sample.target == f"http://***@127.0.0.1:{server.port}/challenge?access_token=***&page=2"
    failing = await http.measure(f"http://alice:hunter2@127.0.0.1:{closed_port()}/?token=s3cr3t", 2)
    assert "hunter2" not in failing.to_json() and "s3cr3t" not in failing.to_json()


async def test_stream_never_hangs_on_a_stalling_server(http_server) -> None:
    server = http_server()
    spec = ProbeSpec(kind="http", target=server.url("/stall"), interval=0.1, timeout=0.5)
    probe = stream(spec)
    started = time.monotonic()
    try:
        samples = [await anext(probe), await anext(probe)]
    finally:
        await probe.aclose()
    assert time.monotonic() - started < 3.0
    assert [s.error for s in samples] == ["read-timeout", "read-timeout"]
