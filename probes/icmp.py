"""ICMP echo probe: ping's round trip, without running ping.

Two ways to send an echo request, tried in this order:

1. An unprivileged datagram ICMP socket (``SOCK_DGRAM, IPPROTO_ICMP``), which
   Linux allows when the process's group is inside ``net.ipv4.ping_group_range``.
   The kernel fills in the identifier and checksum and hands back only our replies.
2. A raw socket (``SOCK_RAW``), which needs CAP_NET_RAW (root). We build the
   packet, compute the checksum, and pick our replies out of all ICMP traffic.

If neither is allowed the probe yields ONE error Sample saying what is missing
(the sysctl to set, or the capability) and then waits quietly, re-checking now
and then so that fixing the sysctl brings it back without a restart. The
target's TCP probe is separate and keeps running either way.

The echo packet is 8 bytes of header plus a payload, written with ``struct``
here rather than built with scapy: scapy costs ~1 s of import and much CPU per
packet, which a 1 Hz x 50 targets hot path should not pay.

Each measurement is one echo; its Sample has ``rtt_ms``. A lost echo is a
"timeout" Sample, so the store's loss and jitter work as for TCP.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from probes.runtime import ProbeSpec, scheduled
from probes.samples import (
    ERROR_EXCEPTION,
    ERROR_TIMEOUT,
    ERROR_UNREACHABLE,
    LOCAL_HOST,
    Sample,
    error_sample,
)
from probes.targets import parse_target

KIND = "icmp"
#: Failure kind for "this host may not send ICMP echo" (neither socket type allowed).
ERROR_NOT_PERMITTED = "not-permitted"
#: How often a probe without permission looks again (silently) whether it has it now.
RECHECK_SECONDS = 30.0

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ICMP6_DEST_UNREACH = 1
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
_sequence = itertools.count(1)
# Linux's values; the socket module names them only from Python 3.12 (IP_RECVERR) / not at all.
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
#: SO_TIMESTAMPNS(_OLD) on Linux's common architectures; Python does not name it.
_SO_TIMESTAMPNS = 35


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes, *, v6: bool = False) -> bytes:
    """An ICMP (or ICMPv6) echo request. The v4 checksum is filled in; for ICMPv6 the
    kernel computes it (it covers a pseudo-header we do not see)."""
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    header = _HEADER.pack(kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if v6:
        return header + payload
    return _HEADER.pack(kind, 0, checksum(header + payload), ident & 0xFFFF, seq & 0xFFFF) + payload


def permission_message() -> str:
    """What is missing, in words an on-call engineer can act on."""
    gid = os.getgid()
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as handle:
            current = " ".join(handle.read().split())
    except OSError:
        current = "unknown"
    return (f"ICMP echo not permitted: group {gid} is outside net.ipv4.ping_group_range ({current}) and the "
            f"process lacks CAP_NET_RAW for a raw socket. Fix one: "
            f"sysctl -w net.ipv4.ping_group_range='{gid} {gid}' (or '0 2147483647'), or run with CAP_NET_RAW "
            f"(root, or setcap cap_net_raw+ep on the interpreter). The target's TCP probe is unaffected.")


@dataclass
class EchoSocket:
    """One open ICMP socket and how it was opened."""

    sock: socket.socket
    mode: str
    """"dgram" (unprivileged ping socket) or "raw"."""
    family: int

    @property
    def v6(self) -> bool:
        return self.family == socket.AF_INET6

    def close(self) -> None:
        self.sock.close()


def open_echo_socket(family: int = socket.AF_INET) -> EchoSocket:
    """Open a datagram ICMP socket if allowed, else a raw one; PermissionError if neither."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    errors = []
    for mode, sock_type in (("dgram", socket.SOCK_DGRAM), ("raw", socket.SOCK_RAW)):
        try:
            sock = socket.socket(family, sock_type, proto)
        except PermissionError as exc:
            errors.append(f"{mode}: {exc}")
            continue
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            pass  # no kernel stamps: the RTT falls back to the event loop's clock
        if mode == "dgram":
            # Without RECVERR an unconnected ping socket silently ignores ICMP errors
            # (host unreachable would look like a timeout); with it they raise on recv.
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        return EchoSocket(sock=sock, mode=mode, family=family)
    raise PermissionError(errno.EPERM, "; ".join(errors))


class EchoFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _parse_reply(data: bytes, echo: EchoSocket, ident: int, seq: int) -> str | None:
    """"reply" or "unreachable" if ``data`` answers our echo, else None (someone else's packet)."""
    if echo.mode == "raw" and not echo.v6:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4:]  # raw IPv4 sockets hand us the IP header too
    if len(data) < 8:
        return None
    kind, _code, _sum, r_ident, r_seq = _HEADER.unpack_from(data)
    reply_kind, unreach_kind = (ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACH) if echo.v6 else (
        ICMP_ECHO_REPLY, ICMP_DEST_UNREACH)
    if kind == reply_kind:
        # A datagram socket's identifier is the kernel's, and it only delivers our own replies.
        if r_seq == seq and (echo.mode == "dgram" or r_ident == ident):
            return "reply"
        return None
    if kind == unreach_kind and echo.mode == "raw":
        # The error quotes our original packet: its IP header (v4), then our echo header.
        inner = data[8:]
        if not echo.v6 and len(inner) >= 20:
            inner = inner[(inner[0] & 0x0F) * 4:]
        elif echo.v6:
            inner = inner[40:]
        if len(inner) >= 8:
            _k, _c, _s, o_ident, o_seq = _HEADER.unpack_from(inner)
            if o_ident == ident and o_seq == seq:
                return "unreachable"
    return None


async def echo_once(echo: EchoSocket, address: str, timeout: float, payload_size: int = 56) -> float:
    """Send one echo request to ``address`` and return the round trip in ms.

    Raises EchoFailure("timeout" | "unreachable", message) when no reply came.
    """
    loop = asyncio.get_running_loop()
    ident = os.getpid() & 0xFFFF
    seq = next(_sequence) & 0xFFFF
    payload = (bytes(range(256)) * (payload_size // 256 + 1))[:payload_size]
    packet = echo_request(ident, seq, payload, v6=echo.v6)
    dest = (address, 0, 0, 0) if echo.v6 else (address, 0)
    deadline = time.perf_counter() + timeout
    start = time.perf_counter()
    sent_ns = time.time_ns()
    try:
        try:
            # Sent synchronously (an ICMP send does not block in practice) so that
            # sent_ns is taken right before the packet leaves, not an event loop turn earlier.
            echo.sock.sendto(packet, dest)
        except BlockingIOError:
            await loop.sock_sendto(echo.sock, packet, dest)
    except OSError as exc:
        if exc.errno in _UNREACHABLE_ERRNOS:
            raise EchoFailure(ERROR_UNREACHABLE, str(exc)) from exc
        raise
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise EchoFailure(ERROR_TIMEOUT, f"no echo reply from {address} within {timeout * 1000:.0f} ms")
        try:
            data, received_ns, source = await asyncio.wait_for(_recv(echo), remaining)
        except (TimeoutError, asyncio.TimeoutError):
            continue
        except OSError as exc:
            # A datagram ping socket reports ICMP errors for its own packets as socket errors.
            _drain_error_queue(echo.sock)
            if exc.errno in _UNREACHABLE_ERRNOS:
                raise EchoFailure(ERROR_UNREACHABLE, f"{address}: {exc.strerror}") from exc
            raise
        if source[0] != address and echo.mode == "dgram":
            continue
        verdict = _parse_reply(data, echo, ident, seq)
        if verdict == "reply" and source[0] == address:
            if received_ns is not None and received_ns >= sent_ns:
                return (received_ns - sent_ns) / 1e6
            return (time.perf_counter() - start) * 1000.0
        if verdict == "unreachable":
            raise EchoFailure(ERROR_UNREACHABLE, f"{source[0]} says {address} is unreachable")


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _recv(echo: EchoSocket) -> tuple[bytes, int | None, tuple[str, int]]:
    """One datagram, the kernel's receive time (ns since the epoch, if stamped) and its source.

    The kernel stamp (SO_TIMESTAMPNS, as ping uses) leaves the event loop's
    wake-up latency out of the RTT: measured here it was ~1 ms on a busy host.
    """
    loop = asyncio.get_running_loop()
    fd = echo.sock.fileno()
    while True:
        try:
            data, ancdata, _flags, source = echo.sock.recvmsg(65535, 256)
        except (BlockingIOError, InterruptedError):
            waiter: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, waiter)
            try:
                await waiter
            finally:
                loop.remove_reader(fd)
            continue
        stamp = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                seconds, nanos = struct.unpack("qq", payload[:16])
                stamp = seconds * 1_000_000_000 + nanos
        return data, stamp, source


def _drain_error_queue(sock: socket.socket) -> None:
    """Empty the RECVERR queue: while it holds entries the socket polls readable forever."""
    for _ in range(64):
        try:
            sock.recvmsg(1024, 1024, socket.MSG_ERRQUEUE)
        except OSError:
            return


async def _resolve(host: str) -> tuple[int, str]:
    try:
        # An address needs no resolver round trip (and no executor thread) per echo.
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if literal.version == 6 else socket.AF_INET), str(literal)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    family, _t, _p, _c, sockaddr = infos[0]
    return family, str(sockaddr[0])


class IcmpProbe:
    """Holds the probe's socket between ticks (one per family, opened on first use)."""

    def __init__(self, spec: ProbeSpec, host: str) -> None:
        self.spec = spec
        self.host = host
        self.target = parse_target(spec.target)
        size = spec.options.get("size", 56)
        self.payload_size = int(size) if isinstance(size, int) and 0 <= size <= 1400 else 56
        self.sockets: dict[int, EchoSocket] = {}

    def socket_for(self, family: int) -> EchoSocket:
        if family not in self.sockets:
            self.sockets[family] = open_echo_socket(family)
        return self.sockets[family]

    async def measure(self, timeout: float) -> Sample:
        try:
            family, address = await _resolve(self.target.host)
        except socket.gaierror as exc:
            return error_sample(KIND, self.spec.target, "dns", str(exc), host=self.host)
        echo = self.socket_for(family)
        fields = {"address": address, "mode": echo.mode}
        try:
            rtt_ms = await echo_once(echo, address, timeout, self.payload_size)
        except EchoFailure as exc:
            return error_sample(KIND, self.spec.target, exc.kind, str(exc), host=self.host, fields=fields)
        return Sample(kind=KIND, target=self.spec.target, ts=time.time(), host=self.host,
                      fields={"rtt_ms": round(rtt_ms, 3), **fields})

    def close(self) -> None:
        for echo in self.sockets.values():
            echo.close()
        self.sockets.clear()


async def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """Echo ``spec.target``'s host every ``spec.interval`` s; see the module doc for permissions."""
    probe = IcmpProbe(spec, host)  # raises TargetError on a bad target, before the first tick
    try:
        while True:
            try:
                family = socket.AF_INET6 if ":" in probe.target.host else socket.AF_INET
                probe.socket_for(family)
            except PermissionError:
                yield error_sample(KIND, spec.target, ERROR_NOT_PERMITTED, permission_message(), host=host)
                while True:  # wait quietly until permission appears; one message is enough
                    await asyncio.sleep(RECHECK_SECONDS)
                    try:
                        probe.socket_for(family)
                        break
                    except PermissionError:
                        continue
            except OSError as exc:
                yield error_sample(KIND, spec.target, ERROR_EXCEPTION, f"cannot open ICMP socket: {exc}", host=host)
                return
            async for sample in scheduled(lambda: probe.measure(spec.timeout * 0.95), kind=KIND,
                                          target=spec.target, interval=spec.interval, timeout=spec.timeout,
                                          host=host):
                yield sample
    finally:
        probe.close()
