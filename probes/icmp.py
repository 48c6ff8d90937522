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
"timeout" Sample, so the store's loss and jitter work as for TCP. Targets on
one address (a TCP port and a URL of the same backend, the demo's five
servers) share an echo when their ticks fall together: the round trip to an
address is the same whichever port a target names, and one echo a tick
instead of one per target is less traffic toward a host under incident.

A name is looked up first (probes/resolve.py), on its own clock and under its
own timeout (options resolve_timeout, resolv_conf, hosts_file): ``rtt_ms`` and
the echo's timeout never include name resolution, ``resolve_ms`` is the lookup's time,
and a failed lookup is error "dns" with ``dns_error`` (as for the TCP probe).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import struct
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

from probes import resolve
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import (
    ERROR_EXCEPTION,
    ERROR_TIMEOUT,
    ERROR_UNREACHABLE,
    LOCAL_HOST,
    JSONValue,
    Sample,
    error_sample,
)
from probes.targets import parse_target

KIND = "icmp"
#: Failure kind for "this host may not send ICMP echo" (neither socket type allowed).
ERROR_NOT_PERMITTED = "not-permitted"
#: The longest an echo to an address answers for another target's probe of that address (see
#: EchoMux.echo_once): targets that start together tick within milliseconds of each other.
SHARE_WITHIN_S = 0.25
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
_SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)


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


def parse_icmp(data: bytes, mode: str, v6: bool) -> tuple[str, int, int] | None:
    """What a received packet is to us: ("reply" | "unreachable", identifier, sequence) or None.

    For "unreachable" the identifier and sequence are those of the echo the
    error quotes, so it can be matched to the request that caused it.
    """
    if mode == "raw" and not v6:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4:]  # raw IPv4 sockets hand us the IP header too
    if len(data) < 8:
        return None
    kind, _code, _sum, ident, seq = _HEADER.unpack_from(data)
    reply_kind, unreach_kind = (ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACH) if v6 else (ICMP_ECHO_REPLY, ICMP_DEST_UNREACH)
    if kind == reply_kind:
        return "reply", ident, seq
    if kind == unreach_kind:
        # The error quotes our original packet: its IP header, then our echo header.
        inner = data[8:]
        if v6:
            inner = inner[40:]
        elif len(inner) >= 20:
            inner = inner[(inner[0] & 0x0F) * 4:]
        if len(inner) >= 8:
            _k, _c, _s, o_ident, o_seq = _HEADER.unpack_from(inner)
            return "unreachable", o_ident, o_seq
    return None


def _bpf_echo_filter(ident: int, v6: bool) -> list[tuple[int, int, int, int]]:
    """A classic BPF program keeping only echo replies with our identifier, and unreachables.

    A raw ICMP socket is handed every ICMP packet the host receives; on a busy
    host (or next to another ping) that is CPU spent in Python and a receive
    buffer that can overflow and drop our replies. ping (iputils) filters the
    same way. IPv4 raw sockets see the IP header first; IPv6 ones do not.
    """
    reply, unreach = (ICMP6_ECHO_REPLY, ICMP6_DEST_UNREACH) if v6 else (ICMP_ECHO_REPLY, ICMP_DEST_UNREACH)
    ld_type, ld_ident = (0x30, 0x28) if v6 else (0x50, 0x48)  # BPF_LD|B / BPF_LD|H, ABS (v6) or IND (v4)
    return [
        (0xB1, 0, 0, 0) if not v6 else (0x00, 0, 0, 0),  # v4: X = IP header length; v6: A = 0 (no-op)
        (ld_type, 0, 0, 0),                # A = ICMP type
        (0x15, 0, 2, reply),               # echo reply? else check unreachable
        (ld_ident, 0, 0, 4),               # A = identifier
        (0x15, 1, 2, ident & 0xFFFF),      # ours: accept; else drop
        (0x15, 0, 1, unreach),             # unreachable: accept (matched by the quoted echo later)
        (0x06, 0, 0, 0xFFFF),              # accept (up to 64 KiB)
        (0x06, 0, 0, 0),                   # drop
    ]


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> bool:
    """SO_ATTACH_FILTER ``program`` to ``sock``; False where the kernel or platform refuses."""
    import ctypes

    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


@dataclass
class _Pending:
    address: str
    sent_ns: int
    start: float
    future: asyncio.Future[float]


@dataclass
class _Echo:
    """One echo request, for the probes of its address that tick within its share window."""

    sent: float
    """time.monotonic() when it was sent."""
    size: int
    future: asyncio.Future[float]


class _EchoAbandoned(Exception):
    """The probe that sent a shared echo stopped before it was answered: send one of your own."""


def _no_reply(address: str, timeout: float) -> EchoFailure:
    return EchoFailure(ERROR_TIMEOUT, f"no echo reply from {address} within {timeout * 1000:.0f} ms")


class EchoMux:
    """One ICMP socket per address family, shared by every icmp probe in the process.

    A raw socket receives every ICMP packet the host gets, so fifty probes with
    a raw socket each would each wake for all fifty targets' replies (measured:
    ~5 % of a core at 50 targets x 1 Hz). One shared socket reads each packet
    once and hands it to the waiting echo by its sequence number.
    """

    def __init__(self, echo: EchoSocket) -> None:
        self.echo = echo
        self.ident = os.getpid() & 0xFFFF
        self.pending: dict[int, _Pending] = {}
        self.recent: dict[str, _Echo] = {}
        """The last echo sent to each address (see echo_once's ``share_within``)."""
        self.users = 0
        self.filtered = echo.mode == "raw" and attach_filter(echo.sock, _bpf_echo_filter(self.ident, echo.v6))
        """Whether the kernel drops other processes' ICMP before it reaches us (raw sockets only)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(echo.sock.fileno(), self._on_readable)

    def close(self) -> None:
        self._loop.remove_reader(self.echo.sock.fileno())
        self.echo.close()
        for pending in self.pending.values():
            if not pending.future.done():
                pending.future.set_exception(EchoFailure(ERROR_EXCEPTION, "ICMP socket closed"))
        self.pending.clear()

    async def echo_once(self, address: str, timeout: float, payload_size: int = 56,
                        share_within: float = 0.0) -> float:
        """Send one echo request to ``address`` and return the round trip in ms.

        With ``share_within`` > 0, an echo of the same size sent to the same address at most that many
        seconds ago answers instead (its round trip, or its failure), so targets on one host that
        tick together send one echo. A probe passes a fraction of its own interval: it never shares
        its own last echo.

        Raises EchoFailure("timeout" | "unreachable", message) when no reply came.
        """
        shared = self.recent.get(address)
        if (share_within > 0 and shared is not None and shared.size == payload_size
                and time.monotonic() - shared.sent <= share_within):
            try:
                return await within(asyncio.shield(shared.future), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                raise _no_reply(address, timeout) from None
            except EchoFailure as exc:
                raise EchoFailure(exc.kind, str(exc)) from None  # the same outcome, a traceback of our own
            except _EchoAbandoned:
                pass  # its sender stopped first: ours follows
        seq = next(_sequence) & 0xFFFF
        payload = (bytes(range(256)) * (payload_size // 256 + 1))[:payload_size]
        packet = echo_request(self.ident, seq, payload, v6=self.echo.v6)
        dest = (address, 0, 0, 0) if self.echo.v6 else (address, 0)
        future: asyncio.Future[float] = self._loop.create_future()
        self.pending[seq] = _Pending(address, time.time_ns(), time.perf_counter(), future)
        self.recent[address] = _Echo(time.monotonic(), payload_size, future)
        outcome: Exception = _EchoAbandoned()
        try:
            try:
                # Sent at once (an ICMP send does not block in practice), so sent_ns is
                # taken right before the packet leaves, not an event loop turn earlier.
                self.echo.sock.sendto(packet, dest)
            except BlockingIOError:
                await self._loop.sock_sendto(self.echo.sock, packet, dest)
            except OSError as exc:
                if exc.errno in _UNREACHABLE_ERRNOS:
                    raise EchoFailure(ERROR_UNREACHABLE, str(exc)) from exc
                raise
            try:
                # Shielded: our timeout or cancellation must not cancel the future others share.
                return await within(asyncio.shield(future), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                raise _no_reply(address, timeout) from None
        except EchoFailure as exc:
            outcome = exc
            raise
        finally:
            self.pending.pop(seq, None)
            if not future.done():  # those sharing it learn what we learnt (or to send their own)
                future.set_exception(outcome)
                future.exception()  # retrieved: nobody need be waiting on it
            if isinstance(outcome, _EchoAbandoned) and (last := self.recent.get(address)) is not None \
                    and last.future is future:
                del self.recent[address]

    def _resolve(self, seq: int, source: str | None, outcome: str, received_ns: int | None) -> None:
        pending = self.pending.get(seq)
        if pending is None or pending.future.done():
            return
        if outcome == "reply":
            if source != pending.address:
                return  # a reply from elsewhere with a colliding sequence number is not ours
            if received_ns is not None and received_ns >= pending.sent_ns:
                rtt_ms = (received_ns - pending.sent_ns) / 1e6
            else:
                rtt_ms = (time.perf_counter() - pending.start) * 1000.0
            pending.future.set_result(rtt_ms)
        else:
            via = f"{source} says " if source and source != pending.address else ""
            pending.future.set_exception(EchoFailure(ERROR_UNREACHABLE, f"{via}{pending.address} is unreachable"))

    def _on_readable(self) -> None:
        sock = self.echo.sock
        for _ in range(256):  # bounded: let other callbacks run under a flood
            try:
                data, ancdata, _flags, source = sock.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                if self.echo.mode == "dgram":
                    # A non-empty error queue keeps the socket polling readable: empty it.
                    self._read_error_queue()
                return
            except OSError:
                # A datagram ping socket reports ICMP errors as a socket error; the
                # error queue holds the echo that caused each, which names its sequence.
                self._read_error_queue()
                continue
            stamp = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= 16:
                    seconds, nanos = struct.unpack("qq", payload[:16])
                    stamp = seconds * 1_000_000_000 + nanos
            parsed = parse_icmp(data, self.echo.mode, self.echo.v6)
            if parsed is None:
                continue
            outcome, ident, seq = parsed
            # A datagram socket's identifier is the kernel's, and it only delivers our own packets.
            if self.echo.mode == "raw" and ident != self.ident:
                continue
            self._resolve(seq, str(source[0]), outcome, stamp)

    def _read_error_queue(self) -> None:
        for _ in range(64):
            try:
                data, _anc, _flags, _source = self.echo.sock.recvmsg(1024, 1024, socket.MSG_ERRQUEUE)
            except OSError:
                return
            if len(data) >= 8:  # our original echo request, header first
                _k, _c, _s, _ident, seq = _HEADER.unpack_from(data)
                self._resolve(seq, None, "unreachable", None)


#: The shared sockets, per event loop and address family.
_MUXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, EchoMux]] = weakref.WeakKeyDictionary()


def acquire_mux(family: int) -> EchoMux:
    """The shared EchoMux for ``family`` (opened on first use); PermissionError if ICMP is not allowed."""
    loop = asyncio.get_running_loop()
    muxes = _MUXES.setdefault(loop, {})
    mux = muxes.get(family)
    if mux is None:
        mux = muxes[family] = EchoMux(open_echo_socket(family))
    mux.users += 1
    return mux


def release_mux(mux: EchoMux) -> None:
    mux.users -= 1
    if mux.users <= 0:
        mux.close()
        muxes = _MUXES.get(mux._loop, {})
        if muxes.get(mux.echo.family) is mux:
            del muxes[mux.echo.family]


class IcmpProbe:
    """One target's echoes, through the process's shared ICMP socket for its family."""

    def __init__(self, spec: ProbeSpec, host: str) -> None:
        self.spec = spec
        self.host = host
        self.target = parse_target(spec.target)
        size = spec.options.get("size", 56)
        self.payload_size = int(size) if isinstance(size, int) and 0 <= size <= 1400 else 56
        self.muxes: dict[int, EchoMux] = {}
        self.lookup = resolve.Lookup.from_options(spec.options)
        # Other targets' echoes to the same address answer for ours if sent this close before our tick:
        # a quarter of our interval, so never our own last one.
        self.share_within = min(SHARE_WITHIN_S, spec.interval / 4)

    def mux_for(self, family: int) -> EchoMux:
        if family not in self.muxes:
            self.muxes[family] = acquire_mux(family)
        return self.muxes[family]

    async def measure(self, timeout: float) -> Sample:
        try:
            resolved = await self.lookup(self.target.host)
        except resolve.LookupFailed as exc:
            return resolve.failed_sample(KIND, self.spec.target, exc, host=self.host)
        mux = self.mux_for(resolved.family)
        fields: dict[str, JSONValue] = {**resolved.fields(), "mode": mux.echo.mode}
        try:
            rtt_ms = await mux.echo_once(resolved.address, timeout, self.payload_size, self.share_within)
        except EchoFailure as exc:
            return error_sample(KIND, self.spec.target, exc.kind, str(exc), host=self.host, fields=fields)
        return Sample(kind=KIND, target=self.spec.target, ts=time.time(), host=self.host,
                      fields={"rtt_ms": round(rtt_ms, 3), **fields})

    def close(self) -> None:
        for mux in self.muxes.values():
            release_mux(mux)
        self.muxes.clear()


async def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """Echo ``spec.target``'s host every ``spec.interval`` s; see the module doc for permissions."""
    probe = IcmpProbe(spec, host)  # raises TargetError on a bad target, before the first tick
    family = socket.AF_INET6 if ":" in probe.target.host else socket.AF_INET
    try:
        try:
            probe.mux_for(family)
        except PermissionError:
            yield error_sample(KIND, spec.target, ERROR_NOT_PERMITTED, permission_message(), host=host)
            while True:  # wait quietly until permission appears; one message is enough
                await asyncio.sleep(RECHECK_SECONDS)
                try:
                    probe.mux_for(family)
                    break
                except PermissionError:
                    continue
        except OSError as exc:
            yield error_sample(KIND, spec.target, ERROR_EXCEPTION, f"cannot open ICMP socket: {exc}", host=host)
            return
        # The lookup has its own limit on top of the echo's: a slow resolver is not a lost echo.
        async for sample in scheduled(lambda: probe.measure(spec.timeout * 0.95), kind=KIND,
                                      target=spec.target, interval=spec.interval,
                                      timeout=spec.timeout + probe.lookup.timeout + 0.2, host=host):
            yield sample
    finally:
        probe.close()
