"""HTTP probe (httpx): where the time of one request goes, and which phase ran out.

One measurement is one request (GET by default), redirects followed by hand so
each hop is seen. Phases come from httpx's ``trace`` request extension (the
httpcore events connect_tcp, start_tls, send_request_headers,
receive_response_headers, receive_response_body) plus our own DNS lookup,
since httpcore folds name resolution into connect_tcp. The lookup
(probes/resolve.py) is timed and bounded on its own (``resolve_timeout``,
default 3 s): the phase limits, the total deadline and total_ms are the
exchange's alone, from connect to the last byte, and a name that does not
resolve is error "dns" with ``dns_error`` (nxdomain, servfail, refused,
no-answer, timeout), ``resolve_ms`` and the resolver's own text.

fields: url, address, status, reason, http_version, dns_ms, resolve_ms (names only), connect_ms,
tls_ms, ttfb_ms (request sent to first response byte: "server processing"),
transfer_ms, total_ms, bytes, redirects ([{status, location}]), final_url,
challenge_redirect (true when a 302/303/307 leads to a challenge or login
page), challenge_location, redirect_limit_reached (still redirected after
max_redirects hops), server, waf_hint (a 403/406/429 that carries a WAF's
marks), timeouts (the connect/read/write/pool/total limits used) and, on
failure, phase (dns, connect, tls, request, ttfb, transfer) and elapsed_ms
(from the start until it gave up).

error (only when the exchange did not complete; a 502 is a completed exchange
whose status the verdict judges): "connect-timeout", "read-timeout",
"write-timeout", "pool-timeout", "total-timeout", "dns", "refused", "reset",
"unreachable", "tls" (handshake or certificate), "protocol" (the server hung
up or spoke garbage), "exception".

Every limit is always set, so a request never hangs: connect, read, write and
pool timeouts go to httpx, and the whole exchange, redirects included, runs
under one total deadline. Secrets never leave the probe: userinfo and
token-like query values are masked in every URL reported and scrubbed from
error text (probes/redact.py).

Options: address (connect here instead of resolving, like curl --resolve; the
Host header and SNI keep the name), server_name, ca_file, method,
max_redirects (default 5), max_body (bytes read at most, default 1 MiB),
resolve_timeout, resolv_conf, hosts_file (the lookup's), connect_timeout,
read_timeout, write_timeout, pool_timeout (defaults are fractions of the
spec's timeout, which is the total).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio._backends._asyncio  # noqa: F401 - imported lazily by httpx on first use; do it before timing
import httpcore  # noqa: F401 - likewise (it pulls in trio if installed: 50+ ms on a first request)
import httpx

from probes import resolve
from probes.redact import redact_url, scrub, url_secrets
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import ERROR_EXCEPTION, LOCAL_HOST, JSONValue, Sample
from probes.targets import Target, parse_target
from probes.tcp import failure_kind
from probes.tls import client_context

KIND = "http"
REDIRECTS = {301, 302, 303, 307, 308}
#: Redirect statuses that send a client somewhere else "for now": the ones a bot check or a login wall uses.
CHALLENGE_STATUSES = {302, 303, 307}
_CHALLENGE = re.compile(
    r"(challenge|captcha|cdn-cgi|__cf_chl|login|signin|sign-in|sign_in|sso|oauth|authorize|"
    r"/auth\b|/verify|bot-?check|access-denied)", re.IGNORECASE)
_WAF_HEADERS = ("x-amzn-waf", "x-sucuri", "x-iinfo", "x-akamai", "cf-mitigated", "x-cdn-waf", "x-waf")
_WAF_BODY = re.compile(r"(web application firewall|request blocked|access denied|attention required|"
                       r"incident id|support id|cloudflare ray id)", re.IGNORECASE)


def default_timeouts(total: float) -> dict[str, float]:
    """Per-phase limits under a total: each shorter than the total so the phase that ran out is named."""
    return {"connect": round(total * 0.5, 3), "read": round(total * 0.8, 3), "write": round(total * 0.5, 3),
            "pool": round(total * 0.25, 3), "total": total}


@dataclass
class _Trace:
    """Timestamps (perf_counter) of httpcore's trace events for one hop."""

    events: dict[str, float] = field(default_factory=dict)
    last_started: str | None = None

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started" -> "connect_tcp.started": drop httpcore's module prefix.
        short = name.split(".", 1)[1] if name.count(".") >= 2 else name
        self.events.setdefault(short, time.perf_counter())
        step = short.rsplit(".", 1)[0]
        if short.endswith(".started") and step not in ("response_closed", "close"):
            # Closing runs after a failure too; it must not hide the phase that failed.
            self.last_started = step

    def span(self, start: str, end: str) -> float | None:
        if start in self.events and end in self.events:
            return round((self.events[end] - self.events[start]) * 1000.0, 3)
        return None

    @property
    def phase(self) -> str:
        """The phase running when things stopped, in the words the verdict uses."""
        return {"connect_tcp": "connect", "start_tls": "tls", "send_request_headers": "request",
                "send_request_body": "request", "receive_response_headers": "ttfb",
                "receive_response_body": "transfer"}.get(
                    self.last_started or "", "connect")


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> str:
    """httpx exception -> the error kind this probe reports."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect-timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "read-timeout"
    if isinstance(exc, httpx.WriteTimeout):
        return "write-timeout"
    if isinstance(exc, httpx.PoolTimeout):
        return "pool-timeout"
    chain = _exception_chain(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "tls"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol"
    for cause in chain:
        if isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError):
            kind = failure_kind(cause)
            if kind != ERROR_EXCEPTION:
                return kind
    if isinstance(exc, httpx.ReadError):
        return "reset"
    return ERROR_EXCEPTION


def _waf_hint(response: httpx.Response, body: bytes) -> str | None:
    if response.status_code not in (403, 406, 429):
        return None
    for name, value in response.headers.items():
        if name.lower().startswith(_WAF_HEADERS):  # prefixes: x-amzn-waf-action, x-iinfo ...
            return f"header {name.lower()}: {value}"
    server = response.headers.get("server", "")
    if server.lower() in ("cloudflare", "akamaighost", "sucuri/cloudproxy"):
        return f"server: {server}"
    match = _WAF_BODY.search(body[:4096].decode("utf-8", "replace"))
    return f"body says {match.group(0)!r}" if match else None


def _phase_fields(trace: _Trace) -> dict[str, JSONValue]:
    """connect/tls/ttfb of one hop; a phase that never completed is None."""
    return {"connect_ms": trace.span("connect_tcp.started", "connect_tcp.complete"),
            "tls_ms": trace.span("start_tls.started", "start_tls.complete"),
            "ttfb_ms": trace.span("send_request_headers.started", "receive_response_headers.complete")}


_LIMIT_OF = {"connect-timeout": "connect", "read-timeout": "read", "write-timeout": "write", "pool-timeout": "pool"}


def _describe(exc: BaseException, limits: dict[str, float], phase: str) -> str:
    """The original error text, with its root cause and, for a timeout, the limit that ran out."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    root = _exception_chain(exc)[-1]
    if root is not exc and str(root) and str(root) not in text and not isinstance(root, asyncio.CancelledError):
        text += f" ({type(root).__name__}: {root})"
    limit = _LIMIT_OF.get(classify(exc))
    if limit:
        text += f" [{limit} timeout {limits[limit]:g} s ran out during {phase}]"
    return text


def _transfer_ms(first: _Trace, last: _Trace, body_done: float, redirected: bool) -> float | None:
    """Time from the response headers to the end of the body read, for the hop whose body we read."""
    hop = last if redirected else first
    headers_done = hop.events.get("receive_response_headers.complete")
    return round((body_done - headers_done) * 1000.0, 3) if headers_done else None


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    default = {"http": 80, "https": 443}.get(url.scheme)
    return host if url.port in (None, default) else f"{host}:{url.port}"


async def measure(target_text: str, timeout: float, *, address: str | None = None, server_name: str | None = None,
                  ca_file: str | None = None, dns_ms: float | None = None, method: str = "GET",
                  max_redirects: int = 5, max_body: int = 1 << 20, timeouts: dict[str, float] | None = None,
                  host: str = LOCAL_HOST, label: str | None = None,
                  lookup: resolve.Lookup = resolve.DEFAULT_LOOKUP) -> Sample:
    """One request (and its redirects) under a total deadline of ``timeout`` seconds."""
    target = parse_target(target_text)
    secrets = url_secrets(target_text)
    shown = label or redact_url(target_text)
    limits = {**default_timeouts(timeout), **(timeouts or {})}
    limits["total"] = min(limits["total"], timeout)
    fields: dict[str, JSONValue] = {"url": redact_url(target_text), "timeouts": dict(limits)}  # type: ignore[arg-type]

    def failed(error: str, message: str, phase: str) -> Sample:
        fields["phase"] = phase
        return Sample(KIND, shown, time.time(), fields=fields, host=host, error=error,
                      message=scrub(message, secrets) or error)

    if not target.is_url:
        return failed(ERROR_EXCEPTION, f"{shown}: the http probe needs an http:// or https:// URL", "request")
    try:
        ipaddress.ip_address(target.host)
        literal = True
    except ValueError:
        literal = False
    # Built before the clock starts: loading the trust store and httpx's lazy
    # imports are our cost, not the target's.
    verify_ctx = client_context(ca_file, True, ["http/1.1"])
    client = httpx.AsyncClient(
        verify=verify_ctx, follow_redirects=False, trust_env=False,  # no proxy or netrc from the environment
        timeout=httpx.Timeout(connect=limits["connect"], read=limits["read"], write=limits["write"],
                              pool=limits["pool"]),
        transport=httpx.AsyncHTTPTransport(verify=verify_ctx, retries=0))
    try:
        return await _measure(client, target_text, target, literal, fields, limits, failed, address=address,
                              server_name=server_name, dns_ms=dns_ms, method=method, max_redirects=max_redirects,
                              max_body=max_body, host=host, label=shown, lookup=lookup)
    finally:
        await client.aclose()


async def _measure(client: httpx.AsyncClient, target_text: str, target: Target, literal: bool,
                   fields: dict[str, JSONValue], limits: dict[str, float], failed: Callable[[str, str, str], Sample],
                   *, address: str | None, server_name: str | None, dns_ms: float | None, method: str,
                   max_redirects: int, max_body: int, host: str, label: str, lookup: resolve.Lookup) -> Sample:
    if address is None and not literal:
        try:
            resolved = await lookup(target.host)
        except resolve.LookupFailed as exc:
            fields.update(dns_error=exc.kind, resolve_ms=exc.resolve_ms)
            return failed(resolve.ERROR_DNS, str(exc), "dns")
        address, dns_ms = resolved.address, resolved.resolve_ms
    fields["dns_ms"] = dns_ms if dns_ms is not None else 0.0
    if dns_ms is not None and not literal:
        fields["resolve_ms"] = dns_ms
    fields["address"] = address or target.host
    # The clock starts after the lookup: the limits and every time below are the exchange's own.
    started = time.perf_counter()
    deadline_at = started + limits["total"]
    first = _Trace()
    current = _Trace()
    redirects: list[dict[str, JSONValue]] = []
    fields["redirects"] = redirects  # type: ignore[assignment]
    fields["challenge_redirect"] = False
    url = httpx.URL(target_text)
    origin_host = url.host

    async def exchange() -> tuple[httpx.Response, int, float, bytes]:
        nonlocal url, current
        hop = 0
        while True:
            current = first if hop == 0 else _Trace()
            wire_url = url
            if address and url.host == origin_host:
                wire_url = url.copy_with(host=address)  # connect to the address we were given, keep the name
            extensions: dict[str, Any] = {"trace": current}
            if url.scheme == "https":
                extensions["sni_hostname"] = server_name or url.host
            request = client.build_request(method, wire_url, headers={"Host": _host_header(url)},
                                           extensions=extensions)
            response = await client.send(request, stream=True)
            size = 0
            head = b""
            try:
                async for chunk in response.aiter_raw():
                    if len(head) < 4096:
                        head += chunk[: 4096 - len(head)]  # enough to recognise a WAF's block page
                    size += len(chunk)
                    if size >= max_body:
                        break  # enough to judge; do not download a whole file
                body_done = time.perf_counter()
            finally:
                await response.aclose()
            location = response.headers.get("location")
            if response.status_code in REDIRECTS and location and hop < max_redirects:
                next_url = url.join(location)
                entry: dict[str, JSONValue] = {"status": response.status_code, "location": redact_url(str(next_url))}
                redirects.append(entry)
                if response.status_code in CHALLENGE_STATUSES and _CHALLENGE.search(
                        f"{next_url.host}{next_url.raw_path.decode('ascii', 'replace')}"):
                    fields["challenge_redirect"] = True
                    fields.setdefault("challenge_location", redact_url(str(next_url)))
                url = next_url
                hop += 1
                continue
            if response.status_code in REDIRECTS and location:
                fields["redirect_limit_reached"] = True  # a loop, or more hops than max_redirects
            return response, size, body_done, head

    try:
        remaining = max(0.01, deadline_at - time.perf_counter())
        response, size, body_done, head = await within(exchange(), remaining)
    except (asyncio.TimeoutError, TimeoutError):
        fields.update(_phase_fields(first), elapsed_ms=round((time.perf_counter() - started) * 1000.0, 3))
        return failed("total-timeout", f"no complete response within the total limit of {limits['total']:g} s",
                      current.phase)
    except httpx.HTTPError as exc:
        fields.update(_phase_fields(first), elapsed_ms=round((time.perf_counter() - started) * 1000.0, 3))
        return failed(classify(exc), _describe(exc, limits, current.phase), current.phase)
    except OSError as exc:
        return failed(failure_kind(exc), str(exc) or type(exc).__name__, current.phase)

    ended = time.perf_counter()
    fields.update(
        status=response.status_code,
        reason=response.reason_phrase,
        http_version=response.http_version,
        **_phase_fields(first),
        transfer_ms=_transfer_ms(first, current, body_done, bool(redirects)),
        total_ms=round((ended - started) * 1000.0, 3),
        bytes=size,
        final_url=redact_url(str(url)),
        server=response.headers.get("server"),
        waf_hint=_waf_hint(response, head),
    )
    return Sample(KIND, label, time.time(), fields=fields, host=host)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    parse_target(spec.target)  # fail fast on a bad target, before the first tick
    opts = spec.options
    timeouts = {name: float(opts[f"{name}_timeout"]) for name in ("connect", "read", "write", "pool")  # type: ignore[arg-type]
                if isinstance(opts.get(f"{name}_timeout"), (int, float))}

    def _opt(name: str) -> str | None:
        value = opts.get(name)
        return str(value) if value else None

    max_redirects = opts.get("max_redirects", 5)
    lookup = resolve.Lookup.from_options(opts)
    max_body = opts.get("max_body", 1 << 20)
    # The runtime's hard limit sits just past the probe's own total deadline, so
    # the probe reports which phase ran out before the runtime's generic timeout.
    return scheduled(
        lambda: measure(spec.target, spec.timeout, address=_opt("address"), server_name=_opt("server_name"),
                        ca_file=_opt("ca_file"), method=_opt("method") or "GET",
                        max_redirects=int(max_redirects) if isinstance(max_redirects, int) else 5,
                        max_body=int(max_body) if isinstance(max_body, int) else 1 << 20,
                        timeouts=timeouts, host=host, lookup=lookup),
        kind=KIND, target=redact_url(spec.target), interval=spec.interval,
        timeout=spec.timeout + lookup.timeout + 0.5, host=host)
