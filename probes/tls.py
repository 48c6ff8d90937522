"""TLS probe: the handshake, the chain the server sent, and why a client would reject it.

One measurement is a TCP connect and a verifying TLS handshake (against the
system trust store, or ``options["ca_file"]``), exactly as a client would do
it. When verification fails, a second handshake that verifies nothing fetches
the protocol, cipher and chain, so the Sample still shows what the server
presented. Fields:

address, port, sni, connect_ms, handshake_ms, protocol ("TLSv1.3"), cipher,
alpn, chain (as the server sent it, leaf first: subject, issuer, not_before,
not_after, is_ca, san), chain_source, verdict, verify_code, verify_message,
days_until_expiry (leaf; negative once expired), trust ("system" or the CA file),
defects: EVERY defect of the chain as [{"kind", "detail"}], judged by
probes/tls_defects.py apart from OpenSSL (which names only its first
complaint), OpenSSL's complaint first: kinds "expired", "not-yet-valid",
"hostname-mismatch", "untrusted-root", "missing-intermediate", "self-signed",
"weak-key", "weak-signature"; detail in plain words ("expired 1.0 day ago
(2026-11-30 12:00 UTC)"). A chain that verified can still list weak-key or
weak-signature (error stays None). problems: the defects' kinds.

verdict / error: "ok" (error None), "expired", "not-yet-valid",
"hostname-mismatch", "self-signed", "missing-intermediate", "untrusted-root",
"weak-key", "weak-signature", "cert-invalid" (any other verification
failure), "handshake" (TLS failed before a certificate could be judged:
protocol or cipher mismatch, reset); connect failures keep the TCP probe's
kinds with ``phase: "connect"``. The error is always ``defects[0]``'s kind.

The chain as sent: Python 3.13 has SSLObject.get_unverified_chain(); 3.10-3.12
have the same call only on the private C object (``_sslobj``), which we use
when the public one is missing; if neither exists we report the leaf alone
(``chain_source: "leaf-only"``) rather than guess.

"missing-intermediate" versus "untrusted-root": OpenSSL says only "unable to get
local issuer certificate" for both. When the last certificate the server sent
is not a CA certificate (the server sent its leaf alone) we call it a missing
intermediate, since that is the common misconfiguration; when the server sent
a CA certificate that leads to no trusted root, "untrusted-root".

Options: ca_file, address (connect here instead of resolving the host, like
curl --resolve), server_name (SNI and the name checked; default the target's
host), alpn (default ["h2", "http/1.1"]).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

from probes.redact import redact_url
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import ERROR_TIMEOUT, LOCAL_HOST, JSONValue, Sample
from probes.targets import Target, parse_target
from probes.tcp import failure_kind

KIND = "tls"
DEFAULT_ALPN = ("h2", "http/1.1")

#: OpenSSL X509_V_ERR_* codes -> verdict.
_VERIFY_VERDICTS = {
    9: "not-yet-valid",         # CERT_NOT_YET_VALID
    10: "expired",              # CERT_HAS_EXPIRED
    18: "self-signed",          # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "untrusted-root",       # SELF_SIGNED_CERT_IN_CHAIN: a private root we do not trust
    62: "hostname-mismatch",    # HOSTNAME_MISMATCH
    64: "hostname-mismatch",    # IP_ADDRESS_MISMATCH
    66: "weak-key",             # EE_KEY_TOO_SMALL
    67: "weak-key",             # CA_KEY_TOO_SMALL
    68: "weak-signature",       # CA_MD_TOO_WEAK
}
_ISSUER_NOT_FOUND = {2, 20, 21}  # UNABLE_TO_GET_ISSUER_CERT(_LOCALLY), UNABLE_TO_VERIFY_LEAF_SIGNATURE


def client_context(ca_file: str | None = None, verify: bool = True,
                   alpn: tuple[str, ...] | list[str] = DEFAULT_ALPN) -> ssl.SSLContext:
    """A client context as an application would build it (or one that verifies nothing).

    Contexts are shared: loading the system trust store costs ~20 ms of CPU, and
    probes ask every second. A CA file that changes on disk (rotated during the
    incident) gets a new context, because its mtime is part of the key.
    """
    try:
        ca_version = os.stat(ca_file).st_mtime_ns if ca_file else 0
    except OSError:  # a missing CA file: build uncached and let ssl raise its own error
        return _new_context(ca_file, verify, tuple(alpn))
    return _cached_context(ca_file, ca_version, verify, tuple(alpn))


@functools.lru_cache(maxsize=32)
def _cached_context(ca_file: str | None, ca_version: int, verify: bool, alpn: tuple[str, ...]) -> ssl.SSLContext:
    return _new_context(ca_file, verify, alpn)


def _new_context(ca_file: str | None, verify: bool, alpn: tuple[str, ...]) -> ssl.SSLContext:
    if verify:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        # This context only looks at what a server presents: a 1024-bit key or a SHA-1 chain must
        # still complete the handshake so that the defect can be named, not end as "handshake failed".
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def sent_chain_der(ssl_object: Any) -> tuple[list[bytes], str]:
    """The certificates the server sent, leaf first, as DER; and how we got them."""
    public = getattr(ssl_object, "get_unverified_chain", None)
    private = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    for source, call in (("unverified_chain", public), ("unverified_chain_private", private)):
        if call is None:
            continue
        try:
            chain = call() or []
        except Exception:  # a private API may change; fall back to the leaf
            continue
        ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for c in chain]
        if ders:
            return ders, source
    leaf = ssl_object.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), "leaf-only"


def describe_cert(der: bytes) -> dict[str, JSONValue]:
    # cryptography is imported on the first certificate, not with the module: it is ~9 MB of RSS
    # that a console with no https target (the http probe imports this module) never needs.
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san: list[JSONValue] = [str(v) for v in san_ext.get_values_for_type(x509.DNSName)]
        san += [str(v) for v in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        san = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "is_ca": is_ca,
        "san": san,
    }


def classify_verify_error(code: int, chain: list[dict[str, JSONValue]]) -> str:
    if code in _VERIFY_VERDICTS:
        return _VERIFY_VERDICTS[code]
    if code in _ISSUER_NOT_FOUND:
        last = chain[-1] if chain else None
        if last is not None and not last.get("is_ca") and last.get("subject") != last.get("issuer"):
            return "missing-intermediate"
        return "untrusted-root"
    return "cert-invalid"


class _HandshakeFailed(Exception):
    """The TCP connect worked; the TLS handshake then failed (``cause`` says how)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


async def _handshake(address: str, port: int, server_name: str, ctx: ssl.SSLContext,
                     timeout: float) -> tuple[asyncio.StreamWriter, float, float]:
    """TCP connect then TLS handshake; returns the writer, connect ms and handshake ms."""
    start = time.perf_counter()
    _reader, writer = await within(asyncio.open_connection(address, port), timeout)
    connected = time.perf_counter()
    try:
        remaining = max(0.05, timeout - (connected - start))
        await within(writer.start_tls(ctx, server_hostname=server_name,
                                                ssl_handshake_timeout=remaining), remaining)
    except BaseException as exc:
        writer.transport.abort()
        if isinstance(exc, (ssl.SSLCertVerificationError, asyncio.CancelledError)):
            raise
        raise _HandshakeFailed(exc) from exc  # so the caller knows the TCP connect itself worked
    done = time.perf_counter()
    return writer, (connected - start) * 1000.0, (done - connected) * 1000.0


def _session_fields(writer: asyncio.StreamWriter) -> tuple[dict[str, JSONValue], list[bytes]]:
    """What the handshake negotiated and the chain as sent (described, and as DER for judging)."""
    ssl_object = writer.get_extra_info("ssl_object")
    cipher = ssl_object.cipher()
    ders, source = sent_chain_der(ssl_object)
    chain = [describe_cert(der) for der in ders]
    fields: dict[str, JSONValue] = {
        "protocol": ssl_object.version(),
        "cipher": cipher[0] if cipher else None,
        "alpn": ssl_object.selected_alpn_protocol(),
        "chain": chain,  # type: ignore[dict-item]
        "chain_source": source,
    }
    if chain:
        not_after = dt.datetime.fromisoformat(str(chain[0]["not_after"]))
        fields["not_after"] = chain[0]["not_after"]
        fields["days_until_expiry"] = round((not_after - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400, 2)
    return fields, ders


async def _defects(ders: list[bytes], name: str, ca_file: str | None, verdict: str | None,
                   verify_message: str | None) -> dict[str, JSONValue]:
    """``defects`` (every defect of the chain, OpenSSL's own complaint first) and ``problems`` (their kinds).

    Judged in a thread: the trust store is a file read on first use.
    """
    from probes import tls_defects  # cryptography: see describe_cert

    try:
        found = await asyncio.to_thread(tls_defects.chain_defects, ders, name, ca_file)
    except ValueError as exc:  # a certificate cryptography cannot parse: OpenSSL's word stands alone
        found = [{"kind": "cert-invalid", "detail": f"cannot read the chain: {exc}"}]
    defects = tls_defects.ordered(found, verdict, verify_message)
    return {"defects": list[JSONValue](defects), "problems": [d["kind"] for d in defects]}


async def measure(target_text: str, timeout: float, *, ca_file: str | None = None, address: str | None = None,
                  server_name: str | None = None, alpn: tuple[str, ...] | list[str] = DEFAULT_ALPN,
                  host: str = LOCAL_HOST, label: str | None = None) -> Sample:
    """One verifying handshake (and an unverified one to describe a rejected server)."""
    target: Target = parse_target(target_text)
    port = target.tcp_port or 443
    name = server_name or target.host
    connect_to = address or target.host
    shown = label or redact_url(target_text)
    deadline = time.monotonic() + timeout
    base: dict[str, JSONValue] = {"address": connect_to, "port": port, "sni": name,
                                  "trust": ca_file or "system"}
    try:
        writer, connect_ms, handshake_ms = await _handshake(connect_to, port, name, client_context(ca_file, True, alpn),
                                                            timeout)
    except ssl.SSLCertVerificationError as exc:
        verify_code, verify_message = int(exc.verify_code or 0), str(exc.verify_message or exc)
        original = str(exc)
    except _HandshakeFailed as failed:
        cause = failed.cause
        if isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
            return Sample(KIND, shown, time.time(), host=host, error=ERROR_TIMEOUT,
                          message=f"TCP connected, but no TLS handshake within {timeout:g} s",
                          fields={**base, "phase": "handshake", "verdict": None})
        # A protocol or cipher mismatch, an alert, or the server hanging up mid-handshake.
        return Sample(KIND, shown, time.time(), host=host, error="handshake",
                      message=str(cause) or type(cause).__name__,
                      fields={**base, "phase": "handshake", "verdict": None, "cause": failure_kind(cause)
                              if not isinstance(cause, ssl.SSLError) else "tls-alert"})
    except (asyncio.TimeoutError, TimeoutError) as exc:
        return Sample(KIND, shown, time.time(), host=host, error=ERROR_TIMEOUT,
                      message=str(exc) or f"TCP connect did not finish within {timeout:g} s",
                      fields={**base, "phase": "connect", "verdict": None})
    except OSError as exc:
        return Sample(KIND, shown, time.time(), host=host, error=failure_kind(exc),
                      message=str(exc) or type(exc).__name__, fields={**base, "phase": "connect", "verdict": None})
    else:
        try:
            session, ders = _session_fields(writer)
        finally:
            writer.transport.abort()
        # Verified, yet the chain may still be weak (a trust store or security level that allows SHA-1).
        fields = {**base, "connect_ms": round(connect_ms, 3), "handshake_ms": round(handshake_ms, 3), **session,
                  "verdict": "ok", "verify_code": 0, "verify_message": None,
                  **await _defects(ders, name, ca_file, None, None)}
        return Sample(KIND, shown, time.time(), fields=fields, host=host)

    # Verification failed: look again without verifying, to show what the server sent.
    fields = {**base, "verify_code": verify_code, "verify_message": verify_message}
    try:
        writer, connect_ms, handshake_ms = await _handshake(
            connect_to, port, name, client_context(None, False, alpn), max(0.1, deadline - time.monotonic()))
    except (OSError, asyncio.TimeoutError, ssl.SSLError, _HandshakeFailed) as exc:
        fields["describe_error"] = str(exc) or type(exc).__name__
        chain: list[dict[str, JSONValue]] = []
        sent: list[bytes] = []
    else:
        try:
            session, sent = _session_fields(writer)
        finally:
            writer.transport.abort()
        fields.update(connect_ms=round(connect_ms, 3), handshake_ms=round(handshake_ms, 3), **session)
        chain = fields.get("chain") or []  # type: ignore[assignment]
    verdict = classify_verify_error(verify_code, chain)
    fields["verdict"] = verdict
    fields.update(await _defects(sent, name, ca_file, verdict, verify_message))
    # error stays the first complaint (OpenSSL's, first in the list), as before; the list says what else is wrong.
    return Sample(KIND, shown, time.time(), fields=fields, host=host, error=verdict, message=original)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    parse_target(spec.target)  # fail fast on a bad target, before the first tick
    opts = spec.options
    alpn = opts.get("alpn") or list(DEFAULT_ALPN)
    assert isinstance(alpn, list)

    def _opt(name: str) -> str | None:
        value = opts.get(name)
        return str(value) if value else None

    return scheduled(
        lambda: measure(spec.target, spec.timeout * 0.95, ca_file=_opt("ca_file"), address=_opt("address"),
                        server_name=_opt("server_name"), alpn=[str(a) for a in alpn], host=host),
        kind=KIND, target=redact_url(spec.target), interval=spec.interval, timeout=spec.timeout, host=host)
