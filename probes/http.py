"""HTTP probe: where the time of one request goes, and which phase ran out.

One measurement is one request (GET by default) on a fresh connection,
redirects followed by hand so each hop is seen. The exchange is HTTP/1.1
spoken by h11 over an asyncio transport of our own: connect, TLS (the shared
client context, ALPN http/1.1), request, response headers, body, each phase
timed and bounded by its own limit. httpx's client did the same at about
three times the CPU per request (a client, a pool and anyio's task machinery
per request: 0.9-1.3 ms against 0.3 ms on loopback), which at 1 Hz per
target was the largest part of the console's probing cost.

Name resolution is our own lookup (probes/resolve.py), timed and bounded on
its own (``resolve_timeout``, default 3 s): the phase limits, the total
deadline and total_ms are the exchange's alone, from connect to the last
byte, and a name that does not resolve is error "dns" with ``dns_error``
(nxdomain, servfail, refused, no-answer, timeout), ``resolve_ms`` and the
resolver's own text. A redirect to another host is resolved by the system
resolver, as any client would.

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
whose status the verdict judges): "connect-timeout" (TCP connect or TLS
handshake), "read-timeout", "write-timeout", "total-timeout", "dns",
"refused", "reset", "unreachable", "tls" (handshake or certificate),
"protocol" (the server hung up or spoke garbage), "exception". The message
keeps the original error's type and text ("ConnectionRefusedError: [Errno
111] ...", "RemoteProtocolError: ..."), and for a timeout the limit that ran
out and the phase it ran out in.

Every limit is always set, so a request never hangs: connect, read and write
limits per phase, and the whole exchange, redirects included, runs under one
total deadline. ``pool`` is kept in ``timeouts`` for the option's sake: a
fresh connection per request never waits for one. Secrets never leave the
probe: userinfo (sent as Basic auth, as curl and httpx do) and token-like
query values are masked in every URL reported and scrubbed from error text
(probes/redact.py).

Options: address (connect here instead of resolving, like curl --resolve; the
Host header and SNI keep the name), server_name, ca_file, method,
max_redirects (default 5), max_body (bytes read at most, default 1 MiB),
resolve_timeout, resolv_conf, hosts_file (the lookup's), connect_timeout,
read_timeout, write_timeout, pool_timeout (defaults are fractions of the
spec's timeout, which is the total).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import h11

from probes import resolve
from probes.redact import redact_url, scrub, url_secrets
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import ERROR_EXCEPTION, LOCAL_HOST, JSONValue, Sample
from probes.targets import parse_target
from probes.tcp import failure_kind
from probes.tls import client_context

KIND = "http"
USER_AGENT = "warroom-probe"
REDIRECTS = {301, 302, 303, 307, 308}
#: Redirect statuses that send a client somewhere else "for now": the ones a bot check or a login wall uses.
CHALLENGE_STATUSES = {302, 303, 307}
#: Largest response head h11 buffers before calling it garbage (httpcore's figure).
MAX_HEAD_BYTES = 100 * 1024
_CHALLENGE = re.compile(
    r"(challenge|captcha|cdn-cgi|__cf_chl|login|signin|sign-in|sign_in|sso|oauth|authorize|"
    r"/auth\b|/verify|bot-?check|access-denied)", re.IGNORECASE)
_WAF_HEADERS = ("x-amzn-waf", "x-sucuri", "x-iinfo", "x-akamai", "cf-mitigated", "x-cdn-waf", "x-waf")
_WAF_BODY = re.compile(r"(web application firewall|request blocked|access denied|attention required|"
                       r"incident id|support id|cloudflare ray id)", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def default_timeouts(total: float) -> dict[str, float]:
    """Per-phase limits under a total: each shorter than the total so the phase that ran out is named."""
    return {"connect": round(total * 0.5, 3), "read": round(total * 0.8, 3), "write": round(total * 0.5, 3),
            "pool": round(total * 0.25, 3), "total": total}


class PhaseTimeout(Exception):
    """One phase's own limit ran out; ``kind`` is the error kind ("read-timeout" ...)."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__()
        self.kind = kind
        self.name = name  # ReadTimeout, ConnectTimeout, WriteTimeout: the words logs and runbooks use


class ServerHungUp(Exception):
    """The connection ended before a complete response."""


@dataclass
class _Trace:
    """Timestamps (perf_counter) of one hop's steps: connect_tcp, start_tls, send_request_headers,
    receive_response_headers, each ``.started`` and ``.complete``; receive_response_body ``.started``
    (the body's end is the response's ``body_done``)."""

    events: dict[str, float] = field(default_factory=dict)
    last_started: str | None = None

    def started(self, step: str) -> None:
        self.events.setdefault(f"{step}.started", time.perf_counter())
        self.last_started = step

    def complete(self, step: str) -> None:
        self.events.setdefault(f"{step}.complete", time.perf_counter())

    def span(self, start: str, end: str) -> float | None:
        if start in self.events and end in self.events:
            return round((self.events[end] - self.events[start]) * 1000.0, 3)
        return None

    @property
    def phase(self) -> str:
        """The phase running when things stopped, in the words the verdict uses."""
        return {"connect_tcp": "connect", "start_tls": "tls", "send_request_headers": "request",
                "receive_response_headers": "ttfb", "receive_response_body": "transfer"}.get(
                    self.last_started or "", "connect")


#: Bytes one read of a connection takes (asyncio.BufferedProtocol). A plain Protocol is handed a fresh
#: bytes of the transport's 256 KiB read size per read, which glibc maps and unmaps each time.
_READ_ROOM = 1 << 16


class _Wire(asyncio.BufferedProtocol):
    """The bytes of one connection, read a chunk at a time: a StreamReader costs more and cannot
    be moved onto TLS before Python 3.11 (an SSH host may run 3.10)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._room: memoryview | None = None
        self._chunks: deque[bytes] = deque()
        self._ended = False
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._room is None:
            self._room = memoryview(bytearray(_READ_ROOM))
        return self._room

    def buffer_updated(self, nbytes: int) -> None:
        assert self._room is not None
        self._chunks.append(bytes(self._room[:nbytes]))
        self._wake()

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._ended, self._lost = True, exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._can_write is None:
            self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, limit: float) -> bytes:
        """The next chunk, b"" at the end; PhaseTimeout("read-timeout") after ``limit`` s of silence."""
        if not self._chunks and not self._ended:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await within(self._waiter, limit)
            except (asyncio.TimeoutError, TimeoutError):
                raise PhaseTimeout("read-timeout", "ReadTimeout") from None
            finally:
                self._waiter = None
        if self._chunks:
            return self._chunks.popleft()
        if self._lost is not None:
            raise self._lost
        return b""

    async def write(self, data: bytes, limit: float) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if self._can_write is not None:  # the send buffer is full: wait for the peer to read
            try:
                await within(asyncio.shield(self._can_write), limit)
            except (asyncio.TimeoutError, TimeoutError):
                raise PhaseTimeout("write-timeout", "WriteTimeout") from None
        if self._lost is not None:
            raise self._lost


@dataclass
class _Response:
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    size: int
    head: bytes
    """The body's first 4 KB: enough to recognise a WAF's block page."""
    body_done: float

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify(exc: BaseException) -> str:
    """An exchange's exception -> the error kind this probe reports."""
    if isinstance(exc, PhaseTimeout):
        return exc.kind
    chain = _exception_chain(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "tls"
    if isinstance(exc, (h11.ProtocolError, ServerHungUp)):
        return "protocol"
    for cause in chain:
        if isinstance(cause, OSError):
            kind = failure_kind(cause)
            if kind != ERROR_EXCEPTION:
                return kind
    if isinstance(exc, (ConnectionError, EOFError)):
        return "reset"
    if isinstance(exc, ValueError):  # a redirect to a URL that cannot be followed: the server's garbage
        return "protocol"
    return ERROR_EXCEPTION


def _waf_hint(response: _Response) -> str | None:
    if response.status not in (403, 406, 429):
        return None
    for name, value in response.headers:
        if name.startswith(_WAF_HEADERS):  # prefixes: x-amzn-waf-action, x-iinfo ...
            return f"header {name}: {value}"
    server = response.header("server") or ""
    if server.lower() in ("cloudflare", "akamaighost", "sucuri/cloudproxy"):
        return f"server: {server}"
    match = _WAF_BODY.search(response.head[:4096].decode("utf-8", "replace"))
    return f"body says {match.group(0)!r}" if match else None


def _phase_fields(trace: _Trace) -> dict[str, JSONValue]:
    """connect/tls/ttfb of one hop; a phase that never completed is None."""
    return {"connect_ms": trace.span("connect_tcp.started", "connect_tcp.complete"),
            "tls_ms": trace.span("start_tls.started", "start_tls.complete"),
            "ttfb_ms": trace.span("send_request_headers.started", "receive_response_headers.complete")}


_LIMIT_OF = {"connect-timeout": "connect", "read-timeout": "read", "write-timeout": "write"}


def _describe(exc: BaseException, limits: dict[str, float], phase: str) -> str:
    """The original error text, with its root cause and, for a timeout, the limit that ran out."""
    name = exc.name if isinstance(exc, PhaseTimeout) else type(exc).__name__
    text = f"{name}: {exc}" if str(exc) else name
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


def _port(url: SplitResult) -> int:
    """The URL's port (ValueError for one out of range), or its scheme's default."""
    return url.port or _DEFAULT_PORTS.get(url.scheme, 80)


def _ascii_host(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _host_header(url: SplitResult) -> str:
    name = url.hostname or ""
    host = f"[{name}]" if ":" in name else _ascii_host(name)
    return host if url.port in (None, _DEFAULT_PORTS.get(url.scheme)) else f"{host}:{url.port}"


def _request_headers(url: SplitResult) -> list[tuple[str, str]]:
    headers = [("Host", _host_header(url)), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
    if url.username is not None:  # userinfo in the URL: Basic auth, as curl and httpx send it
        pair = f"{unquote(url.username)}:{unquote(url.password or '')}".encode()
        headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode("ascii")))
    return headers


async def _one_hop(url: SplitResult, connect_to: str, trace: _Trace, limits: dict[str, float], method: str,
                   tls: ssl.SSLContext | None, server_name: str | None, max_body: int) -> _Response:
    """One request and its response on a connection of its own, closed before this returns."""
    loop = asyncio.get_running_loop()
    trace.started("connect_tcp")
    try:
        transport, wire = await within(loop.create_connection(_Wire, connect_to, _port(url)), limits["connect"])
    except (asyncio.TimeoutError, TimeoutError):
        raise PhaseTimeout("connect-timeout", "ConnectTimeout") from None
    trace.complete("connect_tcp")
    try:
        if tls is not None:
            trace.started("start_tls")
            try:
                secure = await within(loop.start_tls(transport, wire, tls, server_hostname=server_name or
                                                     _ascii_host(url.hostname or "")), limits["connect"])
            except (asyncio.TimeoutError, TimeoutError):
                raise PhaseTimeout("connect-timeout", "ConnectTimeout") from None
            if secure is None:
                raise ServerHungUp("Server disconnected during the TLS handshake.")
            transport = wire.transport = secure
            trace.complete("start_tls")
        return await _exchange(url, wire, trace, limits, method, max_body)
    finally:
        transport.close()


async def _exchange(url: SplitResult, wire: _Wire, trace: _Trace, limits: dict[str, float], method: str,
                    max_body: int) -> _Response:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    trace.started("send_request_headers")
    await wire.write(conn.send(h11.Request(method=method, target=target, headers=_request_headers(url))) +
                     (conn.send(h11.EndOfMessage()) or b""), limits["write"])
    trace.complete("send_request_headers")
    trace.started("receive_response_headers")
    response: h11.Response | None = None
    size = 0
    head = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await wire.read(limits["read"])
            if not data and response is None:
                raise ServerHungUp("Server disconnected without sending a response.")
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            response = event
            trace.complete("receive_response_headers")
            trace.started("receive_response_body")
        elif isinstance(event, h11.Data):
            if len(head) < 4096:
                head += bytes(event.data[: 4096 - len(head)])
            size += len(event.data)
            if size >= max_body:
                break  # enough to judge; do not download a whole file
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    if response is None:
        raise ServerHungUp("Server disconnected without sending a response.")
    return _Response(status=response.status_code, reason=response.reason.decode("latin-1"),
                     http_version=f"HTTP/{response.http_version.decode('ascii')}",
                     headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers],
                     size=size, head=head, body_done=time.perf_counter())


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
    # Built before the clock starts (and shared): loading the trust store is our cost, not the target's.
    tls = client_context(ca_file, True, ["http/1.1"])
    return await _measure(target_text, address, fields, limits, failed, server_name=server_name, tls=tls,
                          method=method, max_redirects=max_redirects, max_body=max_body, host=host, label=shown)


async def _measure(target_text: str, address: str | None, fields: dict[str, JSONValue], limits: dict[str, float],
                   failed: Callable[[str, str, str], Sample], *, server_name: str | None, tls: ssl.SSLContext,
                   method: str, max_redirects: int, max_body: int, host: str, label: str) -> Sample:
    # The clock starts after the lookup: the limits and every time below are the exchange's own.
    started = time.perf_counter()
    deadline_at = started + limits["total"]
    first = _Trace()
    current = _Trace()
    redirects: list[dict[str, JSONValue]] = []
    fields["redirects"] = redirects  # type: ignore[assignment]
    fields["challenge_redirect"] = False
    url = urlsplit(target_text)
    origin_host = url.hostname

    async def follow() -> _Response:
        nonlocal url, current
        hop = 0
        while True:
            current = first if hop == 0 else _Trace()
            # connect to the address we were given for the origin; keep the name for Host and SNI
            connect_to = address if address and url.hostname == origin_host else (url.hostname or "")
            response = await _one_hop(url, connect_to, current, limits, method,
                                      tls if url.scheme == "https" else None,
                                      server_name if url.hostname == origin_host else None, max_body)
            location = response.header("location")
            if response.status in REDIRECTS and location and hop < max_redirects:
                next_url = urlsplit(urljoin(url.geturl(), location))
                _port(next_url)  # ValueError for a port out of range, before we try it
                if next_url.scheme not in _DEFAULT_PORTS or not next_url.hostname:
                    raise ServerHungUp(f"redirected to {redact_url(next_url.geturl())}, which is not an http(s) URL")
                entry: dict[str, JSONValue] = {"status": response.status,
                                               "location": redact_url(next_url.geturl())}
                redirects.append(entry)
                if response.status in CHALLENGE_STATUSES and _CHALLENGE.search(
                        f"{next_url.hostname}{next_url.path}"):
                    fields["challenge_redirect"] = True
                    fields.setdefault("challenge_location", redact_url(next_url.geturl()))
                url = next_url
                hop += 1
                continue
            if response.status in REDIRECTS and location:
                fields["redirect_limit_reached"] = True  # a loop, or more hops than max_redirects
            return response

    try:
        remaining = max(0.01, deadline_at - time.perf_counter())
        response = await within(follow(), remaining)
    except (asyncio.TimeoutError, TimeoutError):
        fields.update(_phase_fields(first), elapsed_ms=round((time.perf_counter() - started) * 1000.0, 3))
        return failed("total-timeout", f"no complete response within the total limit of {limits['total']:g} s",
                      current.phase)
    except (OSError, EOFError, PhaseTimeout, ServerHungUp, h11.ProtocolError, ValueError) as exc:
        fields.update(_phase_fields(first), elapsed_ms=round((time.perf_counter() - started) * 1000.0, 3))
        return failed(classify(exc), _describe(exc, limits, current.phase), current.phase)

    ended = time.perf_counter()
    fields.update(
        status=response.status,
        reason=response.reason,
        http_version=response.http_version,
        **_phase_fields(first),
        transfer_ms=_transfer_ms(first, current, response.body_done, bool(redirects)),
        total_ms=round((ended - started) * 1000.0, 3),
        bytes=response.size,
        final_url=redact_url(url.geturl()),
        server=response.header("server"),
        waf_hint=_waf_hint(response),
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
