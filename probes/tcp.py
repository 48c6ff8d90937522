"""TCP connect probe: how long the three-way handshake takes, and how it fails.

The failure kind matters more than the number: "refused" means a host answered
with RST (nothing listening, or a firewall rejecting), "timeout" means SYNs got
no answer (a drop, a full backlog, a dead host), "unreachable" means the
network itself said no (ICMP unreachable, no route), and "reset" means the
handshake completed but the connection was torn down with RST at once (a
middlebox killing sessions, a server that accepts and aborts, a full accept
queue with tcp_abort_on_overflow). To see a reset, the probe listens on the
fresh connection for a short grace period after connect (twice the handshake
time plus 10 ms by default, ``options["reset_grace_ms"]`` to change it, 0 to
skip); a reset that comes later than that is not distinguishable from a server
closing an idle connection and is not reported.

A name is looked up first (probes/resolve.py), timed and bounded on its own
(``options["resolve_timeout"]``, default 3 s; ``resolv_conf`` and
``hosts_file`` name the files it follows), and the connect goes to the
address it gave: ``rtt_ms``, ``connect_ms`` and the connect's timeout never
include name resolution. ``resolve_ms`` is the lookup's time; a lookup that
fails is error "dns" with ``dns_error`` (nxdomain, servfail, refused,
no-answer, timeout) and the resolver's own text as the message.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import time
from collections.abc import AsyncIterator

from probes import resolve
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import (
    ERROR_EXCEPTION,
    ERROR_REFUSED,
    ERROR_RESET,
    ERROR_TIMEOUT,
    ERROR_UNREACHABLE,
    LOCAL_HOST,
    JSONValue,
    Sample,
    error_sample,
)
from probes.targets import parse_target

KIND = "tcp"
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}


def failure_kind(exc: BaseException) -> str:
    """Map a connect() exception to the failure kinds the console shows."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ERROR_TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ERROR_REFUSED
    if isinstance(exc, ConnectionResetError):
        return ERROR_RESET
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return ERROR_UNREACHABLE
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return ERROR_TIMEOUT
    return ERROR_EXCEPTION


class ResetAfterConnect(ConnectionResetError):
    """The handshake completed, then the peer (or a middlebox) reset the connection."""

    def __init__(self, rtt_ms: float, message: str) -> None:
        super().__init__(message)
        self.rtt_ms = rtt_ms


#: How long past the handshake a reset still counts as "reset after connect": two
#: handshake times (the RST must travel back) plus a margin for the server to accept.
_GRACE_MARGIN_MS = 10.0


#: struct tcp_info: eight u8 fields, then u32s from tcpi_rto; tcpi_rtt is the 16th u32 (microseconds).
_TCPI_RTT_OFFSET = 8 + 15 * 4


def kernel_rtt_ms(sock: socket.socket | None) -> float | None:
    """The kernel's RTT for a just-opened connection: its SYN to SYN-ACK time, in ms.

    The kernel stamps the handshake itself, so the figure does not include the
    time this process took to notice the connect (a busy event loop or a
    thread waiting for the GIL). None where TCP_INFO is not available.
    """
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return None
    if len(info) < _TCPI_RTT_OFFSET + 4:
        return None
    rtt_us = int.from_bytes(info[_TCPI_RTT_OFFSET:_TCPI_RTT_OFFSET + 4], sys.byteorder)
    return rtt_us / 1000.0 if rtt_us > 0 else None


class ConnectTiming(float):
    """The handshake RTT in ms (a float, as before), with both measurements kept.

    ``kernel_ms`` is the kernel's SYN to SYN-ACK time (None where unavailable);
    ``connect_ms`` is what the caller waited for connect(), scheduling included.
    The float value is the kernel figure when there is one.
    """

    kernel_ms: float | None
    connect_ms: float

    def __new__(cls, connect_ms: float, kernel_ms: float | None) -> ConnectTiming:
        timing = super().__new__(cls, kernel_ms if kernel_ms is not None else connect_ms)
        timing.kernel_ms = kernel_ms
        timing.connect_ms = connect_ms
        return timing


def timing_fields(timing: float) -> dict[str, JSONValue]:
    """rtt_ms (kernel figure when there is one), connect_ms, and where rtt_ms came from."""
    if isinstance(timing, ConnectTiming):
        return {"rtt_ms": round(float(timing), 3), "connect_ms": round(timing.connect_ms, 3),
                "rtt_source": "kernel" if timing.kernel_ms is not None else "clock"}
    return {"rtt_ms": round(timing, 3), "rtt_source": "clock"}


async def connect_once(host: str, port: int, timeout: float, *,
                       reset_grace_ms: float | None = 0.0) -> ConnectTiming:
    """Open and close one TCP connection; return the handshake time in ms.

    With ``reset_grace_ms`` > 0 (None: automatic, 2 x handshake + 10 ms) the
    connection is watched that long after connect, and a reset in that time
    raises :class:`ResetAfterConnect`. The default 0 keeps the old behaviour.

    A bare non-blocking socket and the loop's sock_connect/sock_recv, not a
    stream: a transport, a protocol, a reader and a writer per tick cost more
    than the connect itself, every second, for every target (and on every SSH host).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        start = time.perf_counter()
        await within(loop.sock_connect(sock, (host, port)), timeout)
        rtt_ms = ConnectTiming((time.perf_counter() - start) * 1000.0, kernel_rtt_ms(sock))
        grace_ms = 2 * rtt_ms + _GRACE_MARGIN_MS if reset_grace_ms is None else reset_grace_ms
        remaining = timeout - (time.perf_counter() - start)
        grace = min(grace_ms / 1000.0, remaining)
        if grace > 0:
            try:
                # Data (a banner) or EOF both mean the connection was alive; only RST is a failure.
                await within(loop.sock_recv(sock, 1), grace)
            except (TimeoutError, asyncio.TimeoutError):
                pass
            except ConnectionResetError as exc:
                raise ResetAfterConnect(rtt_ms, f"connection reset {(time.perf_counter() - start) * 1000:.1f} ms "
                                                f"after connect: {exc}") from exc
    finally:
        sock.close()
    return rtt_ms


async def measure(target_text: str, timeout: float, host: str = LOCAL_HOST,
                  reset_grace_ms: float | None = None, lookup: resolve.Lookup = resolve.DEFAULT_LOOKUP) -> Sample:
    """Look the name up (on its own clock), then time one connect to the address it gave."""
    target = parse_target(target_text)
    port = target.tcp_port
    if port is None:
        return error_sample(KIND, target_text, ERROR_EXCEPTION, "no port: write HOST:PORT or a URL", host=host)
    fields: dict[str, JSONValue] = {"endpoint": target.endpoint}
    try:
        resolved = await lookup(target.host)
    except resolve.LookupFailed as exc:
        return resolve.failed_sample(KIND, target_text, exc, host=host, fields=fields)
    fields.update(resolved.fields())
    try:
        rtt_ms = await connect_once(resolved.address, port, timeout, reset_grace_ms=reset_grace_ms)
    except asyncio.CancelledError:
        raise
    except ResetAfterConnect as exc:
        # The handshake time is still real evidence: keep it beside the failure.
        return error_sample(KIND, target_text, ERROR_RESET, str(exc), host=host,
                            fields=fields | {"connect_ms": round(exc.rtt_ms, 3)})
    except Exception as exc:  # every failure is evidence, classified below
        return error_sample(KIND, target_text, failure_kind(exc), str(exc) or type(exc).__name__, host=host,
                            fields=fields)
    return Sample(kind=KIND, target=target_text, ts=time.time(), host=host, fields=timing_fields(rtt_ms) | fields)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    parse_target(spec.target)  # fail fast on a bad target, before the first tick
    # The inner timeout is a hair shorter so a slow connect is reported as the
    # connect's own timeout with its endpoint, not as the runtime's generic one.
    # The lookup has its own limit on top: a slow resolver is not a slow connect.
    grace = spec.options.get("reset_grace_ms")
    reset_grace_ms = float(grace) if isinstance(grace, (int, float)) and not isinstance(grace, bool) else None
    lookup = resolve.Lookup.from_options(spec.options)
    return scheduled(lambda: measure(spec.target, spec.timeout * 0.95, host, reset_grace_ms, lookup),
                     kind=KIND, target=spec.target,
                     interval=spec.interval, timeout=spec.timeout + lookup.timeout + 0.2, host=host)
