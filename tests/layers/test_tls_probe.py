"""The tls probe against real TLS servers with certificates from a test CA: one verdict per fault."""

from __future__ import annotations

import re
import time

import pytest

from probes import tls
from probes.registry import stream
from probes.runtime import ProbeSpec
from tests.layers.helpers import closed_port

EXPECTED = {
    "good": None,
    "expired": "expired",
    "not_yet_valid": "not-yet-valid",
    "wrong_name": "hostname-mismatch",
    "self_signed": "self-signed",
    "missing_intermediate": "missing-intermediate",
}


@pytest.mark.parametrize("fault", sorted(EXPECTED))
async def test_verdict_for_each_certificate_fault(tls_server, cert_lab, fault: str) -> None:
    server = tls_server(fault)
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    assert sample.kind == "tls"
    assert sample.error == EXPECTED[fault], sample.message
    assert sample.fields["verdict"] == (EXPECTED[fault] or "ok")
    # Even a rejected server is described: what it negotiated and what it sent.
    assert sample.fields["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert sample.fields["cipher"]
    assert sample.fields["alpn"] == "http/1.1"
    assert sample.fields["handshake_ms"] > 0 and sample.fields["connect_ms"] > 0
    if fault != "good":
        assert "certificate verify failed" in (sample.message or "")  # the original OpenSSL text, kept
        assert [d["kind"] for d in sample.fields["defects"]] == [EXPECTED[fault]]  # one fault, one defect
        assert sample.fields["problems"] == [EXPECTED[fault]]
    else:
        assert sample.fields["defects"] == [] and sample.fields["problems"] == []


async def test_every_problem_is_listed_when_openssl_names_one(tls_server, cert_lab) -> None:
    server = tls_server("expired_wrong_name")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    assert sample.error in ("hostname-mismatch", "expired")
    assert sorted(sample.fields["problems"]) == ["expired", "hostname-mismatch"]
    assert sample.fields["defects"][0]["kind"] == sample.error  # OpenSSL's complaint first, as error says


async def test_an_expired_leaf_from_an_untrusted_ca_is_both(tls_server, cert_lab) -> None:
    server = tls_server("expired_untrusted")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    assert "unable to get local issuer" in (sample.message or "")  # all OpenSSL says
    assert sample.error == "untrusted-root"
    defects = {d["kind"]: d["detail"] for d in sample.fields["defects"]}
    assert list(defects) == ["untrusted-root", "expired"]
    assert re.fullmatch(r"expired 1\.0 day ago \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", defects["expired"])
    assert "warroom untrusted root" in defects["untrusted-root"] and str(cert_lab.ca_file) in defects["untrusted-root"]


async def test_a_weak_key_and_a_sha1_signature_are_both_named(tls_server, cert_lab) -> None:
    server = tls_server("weak")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    assert "key too weak" in (sample.message or "")  # OpenSSL's one complaint
    assert sample.error == "weak-key"
    assert sample.fields["chain"], "the describing handshake still completed and saw the chain"
    defects = {d["kind"]: d["detail"] for d in sample.fields["defects"]}
    assert list(defects) == ["weak-key", "weak-signature"]  # the path to the root is fine
    assert defects["weak-key"] == "CN=good.test has a 1024-bit RSA key (at least 2048 needed)"
    assert defects["weak-signature"] == "CN=good.test is signed with SHA-1"


async def test_a_leaf_without_its_intermediate_says_what_to_install(tls_server, cert_lab) -> None:
    server = tls_server("missing_intermediate")
    sample = await tls.measure(f"good.test:{server.port}", 3, ca_file=str(cert_lab.ca_file), address="127.0.0.1")
    [defect] = sample.fields["defects"]
    assert defect["kind"] == "missing-intermediate"
    assert defect["detail"].startswith("the server sent only the certificate for good.test; its issuer")
    assert "install the full chain" in defect["detail"]


async def test_chain_as_sent_and_expiry(tls_server, cert_lab) -> None:
    full = tls_server("good")
    leaf_only = tls_server("missing_intermediate")
    expired = tls_server("expired")
    ca = str(cert_lab.ca_file)
    good = await tls.measure(f"good.test:{full.port}", 3, ca_file=ca, address="127.0.0.1")
    chain = good.fields["chain"]
    assert len(chain) == 2  # leaf then intermediate, as the server sent them
    assert chain[0]["is_ca"] is False and chain[1]["is_ca"] is True
    assert chain[0]["issuer"] == chain[1]["subject"]
    assert "good.test" in chain[0]["san"]
    assert good.fields["chain_source"] != "leaf-only"
    assert good.fields["days_until_expiry"] > 30
    missing = await tls.measure(f"good.test:{leaf_only.port}", 3, ca_file=ca, address="127.0.0.1")
    assert len(missing.fields["chain"]) == 1
    old = await tls.measure(f"good.test:{expired.port}", 3, ca_file=ca, address="127.0.0.1")
    assert -3 < old.fields["days_until_expiry"] < 0


async def test_system_trust_store_does_not_trust_the_test_ca(tls_server) -> None:
    server = tls_server("good")
    sample = await tls.measure(f"127.0.0.1:{server.port}", 3)
    assert sample.fields["trust"] == "system"
    assert sample.error == "untrusted-root"  # the test root is not in the system store; the chain is complete
    assert "not in the system trust store" in sample.fields["defects"][0]["detail"]


async def test_self_signed_against_system_store(tls_server) -> None:
    server = tls_server("self_signed")
    sample = await tls.measure(f"good.test:{server.port}", 3, address="127.0.0.1")
    assert sample.error == "self-signed"


async def test_ip_target_matches_ip_san(tls_server, cert_lab) -> None:
    server = tls_server("good")
    sample = await tls.measure(f"127.0.0.1:{server.port}", 3, ca_file=str(cert_lab.ca_file))
    assert sample.ok, sample.message


async def test_refused_is_a_connect_failure() -> None:
    sample = await tls.measure(f"127.0.0.1:{closed_port()}", 2)
    assert sample.error == "refused" and sample.fields["phase"] == "connect"


async def test_plain_http_server_is_a_handshake_failure(http_server) -> None:
    server = http_server()
    sample = await tls.measure(f"127.0.0.1:{server.port}", 2)
    assert sample.error == "handshake"
    assert sample.fields["phase"] == "handshake"
    assert sample.message


async def test_stalled_handshake_is_a_bounded_timeout(stall_server) -> None:
    server = stall_server()
    started = time.monotonic()
    sample = await tls.measure(f"127.0.0.1:{server.port}", 0.5)
    assert time.monotonic() - started < 2.5
    assert sample.error == "timeout"
    assert sample.fields["phase"] == "handshake"  # the connect worked; the handshake never came


async def test_stream_with_options(tls_server, cert_lab) -> None:
    server = tls_server("wrong_name")
    spec = ProbeSpec(kind="tls", target=f"https://good.test:{server.port}/", interval=0.1, timeout=2,
                     options={"ca_file": str(cert_lab.ca_file), "address": "127.0.0.1"})
    probe = stream(spec)
    try:
        sample = await anext(probe)
    finally:
        await probe.aclose()
    assert sample.error == "hostname-mismatch"
    assert sample.target == spec.target
