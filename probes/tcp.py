"""TCP connect probe: how long the three-way handshake takes, and how it fails.

The failure kind matters more than the number: "refused" means a host answered
with RST (nothing listening, or a firewall rejecting), "timeout" means SYNs got
no answer (a drop, a full backlog, a dead host), "unreachable" means the
network itself said no (ICMP unreachable, no route).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import AsyncIterator

from probes.runtime import ProbeSpec, scheduled
from probes.samples import (
    ERROR_EXCEPTION,
    ERROR_REFUSED,
    ERROR_RESET,
    ERROR_TIMEOUT,
    ERROR_UNREACHABLE,
    LOCAL_HOST,
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


async def connect_once(host: str, port: int, timeout: float) -> float:
    """Open and close one TCP connection; return the handshake time in ms."""
    start = time.perf_counter()
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    rtt_ms = (time.perf_counter() - start) * 1000.0
    writer.transport.abort()  # RST instead of FIN: do not leave TIME_WAIT on the target
    return rtt_ms


async def measure(target_text: str, timeout: float, host: str = LOCAL_HOST) -> Sample:
    target = parse_target(target_text)
    port = target.tcp_port
    if port is None:
        return error_sample(KIND, target_text, ERROR_EXCEPTION, "no port: write HOST:PORT or a URL", host=host)
    try:
        rtt_ms = await connect_once(target.host, port, timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return error_sample(KIND, target_text, failure_kind(exc), str(exc) or type(exc).__name__, host=host,
                            fields={"endpoint": target.endpoint})
    return Sample(kind=KIND, target=target_text, ts=time.time(), host=host,
                  fields={"rtt_ms": round(rtt_ms, 3), "endpoint": target.endpoint})


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    parse_target(spec.target)  # fail fast on a bad target, before the first tick
    # The inner timeout is a hair shorter so a slow connect is reported as the
    # connect's own timeout with its endpoint, not as the runtime's generic one.
    return scheduled(lambda: measure(spec.target, spec.timeout * 0.95, host), kind=KIND, target=spec.target,
                     interval=spec.interval, timeout=spec.timeout, host=host)
