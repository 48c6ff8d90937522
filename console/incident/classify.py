"""Paste the error: which layer an error text speaks for, what kind of failure it is, and what backs it.

A service logs what its HTTP client, driver or proxy said, often wrapped by
the code around it ("downstream timeout", "context deadline exceeded",
"Caused by: ..."). ``classify`` names the layer and the failure kind of the
innermost cause it recognises, says when the text is (or contains) a wrapper
that hides the original error, and ``link_evidence`` finds the probe Samples
and findings in the store that show the same failure, so a responder sees at
once whether warroom's own probes agree.

Known texts cover Go, Java, Python and Node clients, PostgreSQL and Redis
servers, nginx/Envoy/HAProxy proxy logs (including 499 and 504 access-log
lines) and gRPC status codes. The original text is kept as it came (after
redaction); nothing here rewrites evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from console.diagnosis.finding import Finding
from console.engine.store import Store
from probes.samples import Sample

SampleTest = Callable[[Sample], bool]


@dataclass(frozen=True)
class Pattern:
    """One recognisable error text: where it comes from and what it means."""

    name: str
    regex: re.Pattern[str]
    layer: str
    """"dns", "tcp", "tls", "http", "pool", "host", or "caller" (the client's own deadline or cancel)."""
    kind: str
    """The failure kind, in the probes' words where they have one ("refused", "reset", "read-timeout" ...)."""
    meaning: str
    wrapper: str = ""
    """Non-empty: this text is a wrapper, and this says what it hides and where the original is."""
    evidence: tuple[str, ...] = ()
    """Names of the Sample tests (EVIDENCE below) that show the same failure in the probes."""
    next_step: str = ""


def _p(name: str, regex: str, layer: str, kind: str, meaning: str, *, wrapper: str = "",
       evidence: tuple[str, ...] = (), next_step: str = "") -> Pattern:
    return Pattern(name, re.compile(regex, re.IGNORECASE), layer, kind, meaning, wrapper, evidence, next_step)


_SEED = ("the seed incident lost two days to a logged \"downstream timeout\" that was really the caller's "
         "context being cancelled")

#: Most specific first: the first pattern that matches a span claims it.
PATTERNS: tuple[Pattern, ...] = (
    # --- pools and servers out of slots
    _p("pg_too_many_clients", r"sorry, too many clients already|too_many_connections|53300", "pool",
       "server-out-of-slots", "PostgreSQL refused a new connection: every max_connections slot is taken",
       evidence=("pg_full", "pool_full"),
       next_step="see who holds the slots (pg_stat_activity by application/client); cap the client pools below "
                 "max_connections divided by the number of instances"),
    _p("pg_reserved_slots", r"remaining connection slots are reserved", "pool", "server-out-of-slots",
       "PostgreSQL has only its superuser-reserved slots left", evidence=("pg_full", "pool_full")),
    _p("redis_max_clients", r"max number of clients reached", "pool", "server-out-of-slots",
       "Redis refused a connection: maxclients reached", evidence=("pool_full",)),
    _p("hikari_exhausted", r"HikariPool-\d+ - Connection is not available, request timed out after \d+ ?ms",
       "pool", "client-pool-exhausted",
       "the Java client's HikariCP pool had no free connection within its connectionTimeout",
       wrapper="a pool wait timeout: the cause is whatever holds the connections (slow queries, leaks, a "
               "pool smaller than the concurrency); look at pool use and the server's activity",
       evidence=("pool_full", "pg_full")),
    _p("sqlalchemy_exhausted", r"QueuePool limit of size \d+ overflow \d+ reached", "pool",
       "client-pool-exhausted", "the Python client's SQLAlchemy pool is exhausted",
       wrapper="a pool wait timeout: the cause is whatever holds the connections", evidence=("pool_full",)),
    _p("pool_timeout", r"\bPoolTimeout\b|pool timeout|timed out waiting for (?:a )?connection from (?:the )?pool|"
       r"acquire(?:ing)? (?:a )?connection timed out|Timeout acquiring a connection", "pool",
       "client-pool-exhausted", "the client waited for a free pooled connection and gave up",
       wrapper="a pool wait timeout: the cause is whatever holds the connections", evidence=("pool_full",)),
    # --- TLS
    _p("tls_unknown_ca", r"certificate signed by unknown authority|PKIX path building failed|unable to find valid "
       r"certification path|SELF_SIGNED_CERT_IN_CHAIN|self[- ]signed certificate in certificate chain|"
       r"UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate|unable to get local issuer "
       r"certificate", "tls", "untrusted-root",
       "the client does not trust the chain the server sent (unknown CA, or a missing intermediate)",
       evidence=("tls_untrusted",),
       next_step="compare the chain the server sends with the client's trust store; serve the full chain"),
    _p("tls_expired", r"certificate has expired|CERT_HAS_EXPIRED|CertificateExpiredException|certificate expired|"
       r"x509: certificate has expired or is not yet valid|NotAfter", "tls", "expired",
       "the server's certificate is outside its validity period", evidence=("tls_expired",),
       next_step="renew the certificate and reload the server; alert on probe_ssl_earliest_cert_expiry"),
    _p("tls_name", r"certificate is valid for .+, not |Hostname/IP does not match certificate's altnames|"
       r"ERR_TLS_CERT_ALTNAME_INVALID|No subject alternative (?:DNS )?names? matching|hostname mismatch|"
       r"doesn't match either of|does not match any of the subject alternative names|CertificateException: "
       r"No name matching", "tls", "hostname-mismatch",
       "the certificate does not name the host the client asked for", evidence=("tls_name",)),
    _p("tls_handshake", r"tls: handshake failure|SSLHandshakeException|sslv3 alert handshake failure|"
       r"handshake_failure|wrong version number|EPROTO|tlsv1 alert|SSL routines", "tls", "handshake",
       "the TLS handshake failed (protocol, cipher, SNI or client-certificate mismatch)",
       evidence=("tls_any",)),
    # --- DNS
    _p("dns_nxdomain", r"no such host|ENOTFOUND|Name or service not known|nodename nor servname provided|"
       r"UnknownHostException|NXDOMAIN|Could not resolve host|getaddrinfo failed|\[Errno -2\]", "dns", "nxdomain",
       "the name did not resolve: the resolver says it does not exist", evidence=("dns_fail",),
       next_step="ask each resolver (dig @resolver name); check the search domains and the record itself"),
    _p("dns_temporary", r"Temporary failure in name resolution|EAI_AGAIN|server misbehaving|SERVFAIL|"
       r"\[Errno -3\]|lookup .+ on .+: (?:read udp .+)?i/o timeout", "dns", "servfail-or-timeout",
       "the resolver failed or did not answer in time (not an answer that the name does not exist)",
       evidence=("dns_fail", "dns_slow")),
    # --- the proxy's own words (nginx, Envoy, HAProxy)
    _p("nginx_upstream_timeout", r"upstream timed out \(110: (?:Connection timed out|Operation timed out)\)"
       r"(?: while (?P<while>[a-z ]+))?", "http", "proxy-upstream-timeout",
       "the proxy waited for its backend longer than its proxy timeout and gave up (the client got a 504)",
       evidence=("http_504", "http_slow"),
       next_step="time the backend directly; the proxy's proxy_read_timeout is shorter than the backend's answer"),
    _p("upstream_closed", r"upstream prematurely closed connection|upstream connect error or disconnect/reset "
       r"before headers|reset reason: connection termination", "http", "upstream-closed",
       "the backend closed or reset the connection before answering (often an idle keep-alive race)",
       evidence=("http_502", "tcp_reset"),
       next_step="make the proxy's idle timeout shorter than the backend's keep-alive timeout"),
    _p("upstream_refused", r"connect\(\) failed \(111: Connection refused\) while connecting to upstream|"
       r"no live upstreams|no healthy upstream", "http", "upstream-refused",
       "the proxy could not connect to any backend", evidence=("tcp_refused", "http_502")),
    _p("envoy_upstream_timeout", r"upstream request timeout", "http", "proxy-upstream-timeout",
       "Envoy's route timeout expired before the backend answered (the client got a 504)",
       evidence=("http_504", "http_slow")),
    _p("access_log_499", r"\" 499 |\s499\s\d+|status[=: ]+499\b|\bHTTP/\d(?:\.\d)?\"? 499\b", "caller",
       "client-closed-request",
       "the proxy's client hung up before the answer came (nginx logs 499): the caller's timeout is shorter "
       "than the time the request took",
       wrapper="a 499 says who gave up, not why it was slow: the slow part is behind the proxy (see the "
               "backend's time), and the caller's own log will say only 'timeout' or 'context canceled'",
       evidence=("http_slow", "http_timeout"),
       next_step="line the caller's timeout up with the proxy's and the backend's; find what made it slow"),
    _p("access_log_504", r"\" 504 |\s504\s\d+|status[=: ]+504\b|\bHTTP/\d(?:\.\d)?\"? 504\b|504 Gateway Time-?out",
       "http", "gateway-timeout", "a proxy between the caller and the backend timed out waiting for the backend",
       evidence=("http_504", "http_slow")),
    _p("access_log_502", r"\" 502 |\s502\s\d+|status[=: ]+502\b|502 Bad Gateway", "http", "bad-gateway",
       "a proxy got no usable answer from its backend (refused, reset or garbage)",
       evidence=("http_502", "tcp_refused", "tcp_reset")),
    _p("access_log_503", r"\" 503 |\s503\s\d+|status[=: ]+503\b|503 Service Unavailable", "http",
       "service-unavailable", "the server or proxy says it cannot serve now (overload, no backend, maintenance)",
       evidence=("http_5xx",)),
    _p("http_429", r"\" 429 |\s429\s\d+|status[=: ]+429\b|429 Too Many Requests|rate limit", "http", "rate-limited",
       "the server or a WAF rate-limits this caller", evidence=("http_4xx",)),
    # --- HTTP client timeouts
    _p("go_awaiting_headers", r"timeout awaiting response headers|Client\.Timeout exceeded while awaiting headers",
       "http", "read-timeout", "connected and sent the request; no response headers within the client's timeout",
       evidence=("http_timeout", "http_slow")),
    _p("read_timeout", r"Read timed out|ReadTimeout|read timeout|ESOCKETTIMEDOUT|SocketTimeoutException(?!: "
       r"connect)|timed out reading|i/o timeout.*read|read: connection timed out", "http", "read-timeout",
       "connected, then the answer did not come within the read timeout", evidence=("http_timeout", "http_slow")),
    # --- TCP
    _p("refused", r"connection refused|ECONNREFUSED|\[Errno 111\]|ConnectException: Connection refused|"
       r"actively refused", "tcp", "refused",
       "the host answered with RST: nothing listens on that port, or a firewall rejects", evidence=("tcp_refused",),
       next_step="is the server up and listening on that address and port (ss -ltn)? a reject rule on the way?"),
    _p("reset", r"connection reset by peer|ECONNRESET|\[Errno 104\]|Connection reset|socket hang up|"
       r"forcibly closed by the remote host|SocketException: Connection reset", "tcp", "reset",
       "the connection was torn down with RST (a server or middlebox killing it, or an idle keep-alive race)",
       evidence=("tcp_reset", "http_reset"),
       next_step="capture RSTs (warroom --capture) to see who sends them; check proxy idle timeouts"),
    _p("broken_pipe", r"broken pipe|EPIPE|\[Errno 32\]", "tcp", "reset",
       "wrote on a connection the peer had already closed (typically a pooled keep-alive connection the "
       "server or proxy timed out)", evidence=("tcp_reset", "http_reset"),
       next_step="make the client's idle timeout shorter than the server's keep-alive"),
    _p("unreachable", r"no route to host|EHOSTUNREACH|ENETUNREACH|network is unreachable|Host is unreachable",
       "tcp", "unreachable", "the network said no (ICMP unreachable, no route)", evidence=("tcp_unreachable",)),
    _p("connect_timeout", r"connect timed out|ConnectTimeout|connection timed out|ETIMEDOUT|dial tcp .+: i/o timeout|"
       r"dial tcp .+: connect: connection timed out|\[Errno 110\]|Connect timeout", "tcp", "connect-timeout",
       "SYNs went unanswered: a firewall dropping, a full backlog, packet loss or a dead host",
       evidence=("tcp_timeout", "http_connect_timeout", "icmp_loss")),
    # --- this host
    _p("ephemeral_ports", r"cannot assign requested address|EADDRNOTAVAIL|\[Errno 99\]", "host", "ephemeral-ports",
       "this host ran out of ephemeral ports toward that address (too many connections in TIME-WAIT)",
       evidence=("eph_ports",)),
    _p("fd_limit", r"too many open files|EMFILE|\[Errno 24\]", "host", "fd-limit",
       "the calling process hit its open-file limit", evidence=("fd_pressure",)),
    # --- the caller's own deadline or cancel: wrappers
    _p("grpc_deadline", r"code = DeadlineExceeded|DEADLINE_EXCEEDED", "caller", "deadline",
       "the gRPC call's deadline expired",
       wrapper="the deadline is the caller's; it says time ran out, not where it went: the slow hop is in the "
               "evidence below or behind the server", evidence=("http_slow", "http_timeout", "tcp_timeout")),
    _p("grpc_unavailable", r"code = Unavailable|UNAVAILABLE:", "tcp", "unavailable",
       "gRPC could not reach a healthy server (connect failed, reset, or the server is draining)",
       evidence=("tcp_refused", "tcp_reset", "tcp_timeout")),
    _p("context_deadline", r"context deadline exceeded", "caller", "deadline",
       "the Go caller's context deadline expired while waiting",
       wrapper="Go's context error says the caller's time ran out, not which phase was slow: look for the "
               "original error after the last ':' or in the layer evidence below",
       evidence=("http_slow", "http_timeout", "tcp_timeout", "dns_slow")),
    _p("context_canceled", r"context canceled|context cancelled|AbortError|The operation was aborted|"
       r"CancelledError|request aborted|ClientAbortException", "caller", "cancelled",
       "the caller cancelled the request (its own caller went away or its deadline passed)",
       wrapper="a cancel comes from above: the request was abandoned by whoever called it, so the timeout to "
               "fix is the caller's, and the proxy usually logs it as 499; " + _SEED,
       evidence=("http_slow", "http_timeout")),
    _p("downstream_timeout", r"downstream timeout|upstream timeout|gateway timeout(?! ?\()|request timeout|"
       r"operation timed out|TimeoutException|asyncio\.TimeoutError|TimeoutError|\btimed out\b|\btimeout\b",
       "caller", "timeout",
       "a timeout, in the words of the code that wrapped the real error",
       wrapper="a generic timeout from the application's own code: it hides which call timed out and why; "
               + _SEED + ". Compare its duration with the caller's deadline and the layer evidence below",
       evidence=("http_slow", "http_timeout", "tcp_timeout", "dns_slow")),
)


# ------------------------------------------------------------------ evidence


def _f(sample: Sample, name: str) -> Any:
    return sample.fields.get(name)


def _status(sample: Sample) -> int | None:
    status = _f(sample, "status")
    return status if isinstance(status, int) else None


def _defects(sample: Sample) -> set[str]:
    raw = _f(sample, "defects")
    kinds = {str(d.get("kind")) for d in raw if isinstance(d, dict)} if isinstance(raw, list) else set()
    if sample.error:
        kinds.add(sample.error)
    return kinds


def _gauges_full(sample: Sample) -> bool:
    gauges = _f(sample, "gauges")
    return isinstance(gauges, list) and any(isinstance(g, dict) and isinstance(g.get("util_pct"), (int, float))
                                            and g["util_pct"] >= 95 for g in gauges)


def _slow(sample: Sample) -> bool:
    total = _f(sample, "total_ms")
    return sample.ok and isinstance(total, (int, float)) and total >= 1000


EVIDENCE: dict[str, tuple[str, SampleTest]] = {
    "tcp_refused": ("TCP connects refused", lambda s: s.kind in ("tcp", "http") and s.error == "refused"),
    "tcp_reset": ("TCP connections reset", lambda s: s.kind == "tcp" and s.error == "reset"),
    "tcp_timeout": ("TCP connects timed out", lambda s: s.kind == "tcp" and s.error == "timeout"),
    "tcp_unreachable": ("TCP connects unreachable", lambda s: s.kind in ("tcp", "http") and s.error == "unreachable"),
    "icmp_loss": ("ICMP echoes lost", lambda s: s.kind == "icmp" and not s.ok),
    "http_reset": ("HTTP exchanges reset", lambda s: s.kind == "http" and s.error in ("reset", "protocol")),
    "http_timeout": ("HTTP requests that timed out", lambda s: s.kind == "http"
                     and (s.error or "").endswith("timeout") and s.error != "connect-timeout"),
    "http_connect_timeout": ("HTTP connects that timed out",
                             lambda s: s.kind == "http" and s.error == "connect-timeout"),
    "http_slow": ("HTTP answers slower than 1 s", lambda s: s.kind == "http" and _slow(s)),
    "http_504": ("HTTP 504 answers", lambda s: s.kind == "http" and _status(s) == 504),
    "http_502": ("HTTP 502 answers", lambda s: s.kind == "http" and _status(s) == 502),
    "http_5xx": ("HTTP 5xx answers", lambda s: s.kind == "http" and (_status(s) or 0) >= 500),
    "http_4xx": ("HTTP 4xx answers", lambda s: s.kind == "http" and 400 <= (_status(s) or 0) < 500),
    "tls_untrusted": ("TLS chains not trusted", lambda s: s.kind == "tls" and bool(
        _defects(s) & {"untrusted-root", "missing-intermediate", "self-signed", "untrusted-ca"})),
    "tls_expired": ("TLS certificates expired", lambda s: s.kind == "tls" and bool(
        _defects(s) & {"expired", "not-yet-valid", "cert-expired"})),
    "tls_name": ("TLS certificates for another name", lambda s: s.kind == "tls" and bool(
        _defects(s) & {"hostname-mismatch", "wrong-name"})),
    "tls_any": ("TLS handshakes failed", lambda s: s.kind == "tls" and not s.ok),
    "dns_fail": ("DNS lookups failed", lambda s: (s.kind == "dns" and not s.ok)
                 or (s.kind in ("tcp", "icmp", "http") and s.error == "dns")),
    "dns_slow": ("DNS answers slower than 1 s", lambda s: s.kind == "dns" and s.ok
                 and isinstance(t := _f(s, "time_ms"), (int, float)) and t >= 1000),
    "pg_full": ("PostgreSQL out of connection slots", lambda s: s.kind == "pg_pool" and (
        "too many clients" in (s.message or "") or _gauges_full(s))),
    "pool_full": ("pools at their maximum", lambda s: s.kind in ("pools", "pg_pool", "redis_pool", "metrics_pool")
                  and (_gauges_full(s) or "too many clients" in (s.message or ""))),
    "eph_ports": ("ephemeral ports nearly used up", lambda s: s.kind == "conns"
                  and isinstance(p := _f(s, "ephemeral_pct"), (int, float)) and p >= 80),
    "fd_pressure": ("processes near their fd limit", lambda s: s.kind == "conns" and bool(_f(s, "fd_top"))),
}

#: Finding layers that back each classified layer.
_FINDING_LAYERS = {"caller": ("http", "tcp", "path", "dns"), "host": ("host", "pool", "tcp")}


@dataclass(frozen=True)
class Match:
    pattern: Pattern
    start: int
    end: int
    text: str


@dataclass
class EvidenceLink:
    """Probe Samples (one series) that show the same failure as the pasted text."""

    label: str
    host: str
    kind: str
    target: str
    matched: int
    total: int
    example: str
    """One matching Sample's original error text (or its status), as it came."""

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "host": self.host, "kind": self.kind, "target": self.target,
                "matched": self.matched, "total": self.total, "example": self.example}

    def line(self) -> str:
        where = f"{self.host}/{self.kind} {self.target}".rstrip()
        return f"{self.label}: {self.matched} of {self.total} in {where} (e.g. {self.example})"


@dataclass
class Classification:
    """What a pasted error text says: layer, failure kind, wrapper or not, and the evidence behind it."""

    text: str
    layer: str
    kind: str
    meaning: str
    matched: str = ""
    """The words that were recognised, as they appear in the text."""
    wrapper: str = ""
    """Non-empty when the text is, or contains, a wrapper; says what it hides."""
    wrapped_by: list[str] = field(default_factory=list)
    """The wrappers around the cause that was recognised (outermost first)."""
    also: list[str] = field(default_factory=list)
    """Other recognised parts ("layer/kind: words")."""
    next_step: str = ""
    evidence: list[EvidenceLink] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    """Titles of current findings on the same layer and target."""

    @property
    def known(self) -> bool:
        return self.layer != "unknown"

    def lines(self) -> list[str]:
        out = [f"layer {self.layer}, failure kind {self.kind}: {self.meaning}"]
        if self.matched:
            out.append(f"recognised: \"{self.matched}\"")
        if self.wrapped_by:
            out.append(f"wrapped by: {'; '.join(self.wrapped_by)} (the cause is the inner error above)")
        if self.wrapper:
            out.append(f"WRAPPER: {self.wrapper}")
        out += [f"also in the text: {x}" for x in self.also]
        if self.evidence:
            out += [f"probe evidence: {link.line()}" for link in self.evidence]
        elif self.known:
            out.append("probe evidence: none of warroom's probes shows this failure: it may lie between the service "
                       "and what warroom probes, or only on the service's host (add it with --host)")
        out += [f"matching finding: {title}" for title in self.findings]
        if self.next_step:
            out.append(f"next: {self.next_step}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "layer": self.layer, "kind": self.kind, "meaning": self.meaning,
                "matched": self.matched, "wrapper": self.wrapper, "wrapped_by": self.wrapped_by,
                "also": self.also, "next_step": self.next_step, "evidence": [e.to_dict() for e in self.evidence],
                "findings": self.findings}


def _matches(text: str) -> list[Match]:
    """Every pattern's first match, a span claimed once (the more specific pattern wins)."""
    found: list[Match] = []
    for pattern in PATTERNS:
        for m in pattern.regex.finditer(text):
            if any(m.start() < other.end and other.start < m.end() for other in found):
                continue
            found.append(Match(pattern, m.start(), m.end(), m.group(0).strip()))
            break
    return sorted(found, key=lambda m: m.start)


def _inner_text_start(text: str) -> int:
    """Where the innermost cause starts: after the last "Caused by:" (Java) or the Python direct-cause line."""
    marks = [m.end() for m in re.finditer(r"Caused by:|The above exception was the direct cause|"
                                          r"During handling of the above exception", text)]
    return marks[-1] if marks else 0


def classify(text: str) -> Classification:
    """The layer and failure kind of the innermost recognised cause in ``text``, with its wrappers."""
    matches = _matches(text)
    if not matches:
        return Classification(text=text, layer="unknown", kind="unrecognised",
                              meaning="no known error text: paste the whole log line, including the error's "
                                      "inner part (after 'Caused by:' or the last ':')")
    concrete = [m for m in matches if not m.pattern.wrapper]
    wrappers = [m for m in matches if m.pattern.wrapper]
    inner_start = _inner_text_start(text)
    if concrete:
        # The innermost concrete cause: after the last "Caused by:" if any, else the last in a Go-style chain.
        inner = [m for m in concrete if m.start >= inner_start] or concrete
        cause = inner[-1]
    else:
        cause = wrappers[-1]
    pattern = cause.pattern
    result = Classification(text=text, layer=pattern.layer, kind=pattern.kind, meaning=pattern.meaning,
                            matched=cause.text, next_step=pattern.next_step)
    if pattern.wrapper:
        result.wrapper = pattern.wrapper
    result.wrapped_by = [f"\"{m.text}\" ({m.pattern.layer}/{m.pattern.kind})" for m in wrappers if m is not cause]
    result.also = [f"{m.pattern.layer}/{m.pattern.kind}: \"{m.text}\"" for m in concrete if m is not cause]
    return result


def evidence_tests(classification: Classification) -> list[str]:
    pattern = next((p for p in PATTERNS if p.layer == classification.layer and p.kind == classification.kind), None)
    return list(pattern.evidence) if pattern else []


def link_evidence(classification: Classification, store: Store, findings: Iterable[Finding] = (), *,
                  window_s: float | None = 600.0, limit: int = 6) -> Classification:
    """Attach the store's Samples (per series) and the findings that show the same failure."""
    tests = evidence_tests(classification)
    links: list[EvidenceLink] = []
    for key in store.keys(kind=None):
        samples = store.window(key, window_s)
        if not samples:
            continue
        for name in tests:
            label, test = EVIDENCE[name]
            hits = [s for s in samples if _safe(test, s)]
            if hits:
                example = hits[-1].message or (f"HTTP {_status(hits[-1])}" if _status(hits[-1]) else
                                               ", ".join(f"{k}={v}" for k, v in list(hits[-1].fields.items())[:3]))
                links.append(EvidenceLink(label, key[0], key[1], key[2], len(hits), len(samples), str(example)[:200]))
                break
    links.sort(key=lambda link: link.matched / max(link.total, 1), reverse=True)
    classification.evidence = links[:limit]
    layers = _FINDING_LAYERS.get(classification.layer, (classification.layer,))
    targets = {link.target for link in classification.evidence}
    classification.findings = [f.title for f in findings
                               if f.layer in layers and (not targets or not f.target or f.target in targets
                                                         or any(f.target in t or t in f.target for t in targets))][:4]
    return classification


def _safe(test: SampleTest, sample: Sample) -> bool:
    try:
        return bool(test(sample))
    except (TypeError, ValueError):
        return False
