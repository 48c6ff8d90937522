"""Paste the error: the layer and failure kind of real error texts, wrappers named, probe evidence linked."""

from __future__ import annotations

import time

import pytest

from console.diagnosis.finding import Finding
from console.engine.store import Store
from console.incident.classify import classify, link_evidence
from probes.samples import Sample

CASES = [
    # (text, layer, kind, is a wrapper)
    ("read tcp 10.0.0.5:41234->10.0.0.9:5432: read: connection reset by peer", "tcp", "reset", False),
    ("Error: read ECONNRESET\n    at TCP.onStreamRead (node:internal/stream_base_commons:217:20)", "tcp", "reset",
     False),
    ("java.net.SocketException: Connection reset", "tcp", "reset", False),
    ("requests.exceptions.ConnectionError: ('Connection aborted.', ConnectionResetError(104, "
     "'Connection reset by peer'))", "tcp", "reset", False),
    ('Get "http://orders:8080/api": context deadline exceeded', "caller", "deadline", True),
    ("x509: certificate signed by unknown authority", "tls", "untrusted-root", False),
    ("javax.net.ssl.SSLHandshakeException: PKIX path building failed: sun.security.provider.certpath."
     "SunCertPathBuilderException: unable to find valid certification path to requested target", "tls",
     "untrusted-root", False),
    ("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
     "issuer certificate (_ssl.c:1006)", "tls", "untrusted-root", False),
    ("Error: certificate has expired\n  code: 'CERT_HAS_EXPIRED'", "tls", "expired", False),
    ("psycopg.OperationalError: connection failed: FATAL:  sorry, too many clients already", "pool",
     "server-out-of-slots", False),
    ("FATAL: sorry, too many clients already", "pool", "server-out-of-slots", False),
    ("2024/05/01 12:00:01 [error] 31#31: *1 upstream timed out (110: Connection timed out) while reading response "
     "header from upstream, client: 10.0.0.1, server: api, request: \"GET /orders HTTP/1.1\"", "http",
     "proxy-upstream-timeout", False),
    ('10.0.0.7 - - [01/May/2024:12:00:03 +0000] "GET /orders HTTP/1.1" 504 167 "-" "okhttp/4.9"', "http",
     "gateway-timeout", False),
    ('10.0.0.7 - - [01/May/2024:12:00:03 +0000] "POST /pay HTTP/1.1" 499 0 "-" "Go-http-client/1.1"', "caller",
     "client-closed-request", True),
    ("dial tcp 10.0.0.9:5432: connect: connection refused", "tcp", "refused", False),
    ("Error: connect ECONNREFUSED 127.0.0.1:6379", "tcp", "refused", False),
    ("dial tcp: lookup orders.internal on 10.0.0.2:53: no such host", "dns", "nxdomain", False),
    ("Error: getaddrinfo ENOTFOUND orders.internal", "dns", "nxdomain", False),
    ("java.net.UnknownHostException: orders.internal", "dns", "nxdomain", False),
    ("java.net.SocketTimeoutException: Read timed out", "http", "read-timeout", False),
    ("java.net.SocketTimeoutException: connect timed out", "tcp", "connect-timeout", False),
    ("httpx.ReadTimeout: timed out", "http", "read-timeout", False),
    ('Get "http://orders/": net/http: timeout awaiting response headers', "http", "read-timeout", False),
    ("HikariPool-1 - Connection is not available, request timed out after 30000ms.", "pool",
     "client-pool-exhausted", True),
    ("downstream timeout", "caller", "timeout", True),
    ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", "caller", "deadline", True),
    ("OSError: [Errno 99] Cannot assign requested address", "host", "ephemeral-ports", False),
]


@pytest.mark.parametrize(("text", "layer", "kind", "wrapper"), CASES, ids=[c[0][:40] for c in CASES])
def test_error_texts_name_their_layer_and_kind(text: str, layer: str, kind: str, wrapper: bool) -> None:
    result = classify(text)
    assert (result.layer, result.kind) == (layer, kind), result.lines()
    assert bool(result.wrapper) == wrapper, result.lines()
    assert result.text == text  # the original text is kept as it came


def test_a_wrapper_around_a_real_cause_names_the_cause_and_the_wrapper() -> None:
    result = classify("order service: downstream timeout: Post \"http://pay:8080/charge\": dial tcp 10.1.2.3:8080: "
                      "connect: connection refused")
    assert (result.layer, result.kind) == ("tcp", "refused")
    assert any("downstream timeout" in w for w in result.wrapped_by)
    assert "wrapped by" in "\n".join(result.lines())


def test_java_caused_by_chain_is_read_from_the_innermost_cause() -> None:
    text = ("org.springframework.dao.DataAccessResourceFailureException: Unable to acquire JDBC Connection\n"
            "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
            "request timed out after 30000ms.\n"
            "Caused by: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already")
    result = classify(text)
    assert (result.layer, result.kind) == ("pool", "server-out-of-slots")


def test_downstream_timeout_says_it_hides_the_callers_cancelled_context() -> None:
    result = classify("ERROR handler: downstream timeout after 2.0s")
    assert result.wrapper and "context" in result.wrapper and "cancel" in result.wrapper
    cancelled = classify("downstream timeout: context canceled")
    assert cancelled.kind == "cancelled" and "499" in cancelled.wrapper


def test_unknown_text_says_what_to_paste() -> None:
    result = classify("something odd happened")
    assert result.layer == "unknown" and "Caused by" in result.meaning


def test_evidence_is_linked_to_matching_probe_samples_and_findings() -> None:
    now = time.time()
    store = Store()
    for i in range(10):
        store.add(Sample("tcp", "127.0.0.1:5432", now - 10 + i, {}, error="refused",
                         message="[Errno 111] Connect call failed ('127.0.0.1', 5432)"))
        store.add(Sample("tcp", "127.0.0.1:8080", now - 10 + i, {"rtt_ms": 0.2}))
    finding = Finding(rule="unreachable", title="127.0.0.1:5432 refuses every connect", severity="critical",
                      layer="tcp", confidence=0.9, target="127.0.0.1:5432")
    result = link_evidence(classify("dial tcp 127.0.0.1:5432: connect: connection refused"), store, [finding])
    assert len(result.evidence) == 1
    link = result.evidence[0]
    assert (link.target, link.matched, link.total) == ("127.0.0.1:5432", 10, 10)
    assert "Connect call failed" in link.example
    assert result.findings == [finding.title]
    nothing = link_evidence(classify("x509: certificate signed by unknown authority"), store, [finding])
    assert nothing.evidence == [] and any("none of warroom's probes" in line for line in nothing.lines())
