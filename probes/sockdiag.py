"""Every inet socket straight from the kernel: a NETLINK_SOCK_DIAG dump with tcp_info.

This is what ``ss`` does underneath, minus ss's text formatting and our
parsing of it: on 10,000 sockets the dump and its decoding take about 40 ms
against about 100 ms for ``ss -tuanieOH`` plus the regex over its 5 MB of
text. Hand-written because the one library for it (pyroute2) decodes every
attribute through a generic pure-Python layer, which is far slower per
socket; the structures read here are the kernel's stable UAPI
(linux/inet_diag.h, linux/tcp.h) and only the fields warroom shows are read.

``dump_all()`` returns rows in probes.conns.COLUMNS order with no process
(the caller maps inodes to processes). It raises OSError where sock_diag is
not available (some sandboxes); the caller then falls back to ss.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from typing import Any

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
TCPDIAG_GETSOCK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2

_NLMSGHDR = struct.Struct("=IHHII")
# struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes, zero: match all)
_REQUEST = struct.Struct("=BBBxI48x")
# struct inet_diag_req (the request before v2): family, src_len, dst_len, ext, inet_diag_sockid (zero), states, dbs
_REQUEST_V1 = struct.Struct("=BBBB48xII")
# struct inet_diag_msg (72 bytes): family, state, timer, retrans, sockid (sport, dport big-endian; src, dst;
# if; cookie), expires, rqueue, wqueue, uid, inode - we read family, state, the sockid's addresses and the
# last four here, and the ports, which are big-endian, with _PORTS at offset 4
_MSG = struct.Struct("=BB6x16s16s4x8x4xIIII")
_PORTS = struct.Struct(">HH")
_LENGTH_TYPE = struct.Struct("=IH")
_RTATTR = struct.Struct("=HH")
# struct tcp_info: last_data_sent @44, last_data_recv @52, rtt (us) @68, total_retrans @100,
# bytes_acked @120, bytes_received @128 (the last two since Linux 4.1)
_TCP_INFO = struct.Struct("=44xI4xI12xI28xI16xQQ")
_TCP_INFO_OLD = struct.Struct("=44xI4xI12xI28xI")
_ERRNO = struct.Struct("=i")

#: Kernel TCP states (include/net/tcp_states.h) by the names ss prints.
STATES = {1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
          7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "SYN-RECV"}
#: STATES by number, for the decode loop (a tuple index costs less than a dict lookup, per socket).
_STATE_NAMES = tuple(STATES.get(number, str(number)) for number in range(13))
#: Every state `ss -ta` and /proc/net/tcp show: 0-12 (TCP_ESTABLISHED to TCP_NEW_SYN_RECV). Not 13,
#: TCP_BOUND_INACTIVE (Linux 6.5+): a socket bound and neither listening nor connecting, which ss
#: shows only when asked (--bound-inactive) and /proc/net/tcp never. Asking for it made the kernel walk
#: its bind hash too (65,536 buckets here, ~0.3-0.5 ms a reading), and showed such a socket as an
#: "UNCONN" row that the ss and psutil readings do not have, among the listeners.
_ALL_STATES = (1 << 13) - 1
TIME_WAIT = 6

#: TIME-WAIT sockets as (local port, remote "address:port") pairs instead of rows. A host whose clients
#: close first (no keep-alive) holds tens of thousands of them for 60 s each, and a summary needs of each
#: only its state, local port and destination (ephemeral port use per destination): not its queues, owner
#: (none: no process holds one) or tcp_info (none either).
TimeWait = list[tuple[int, str]]

#: Bytes one recv takes. A dump answers in datagrams of at most 32 KiB (netlink_dump caps its skb at
#: SKB_WITH_OVERHEAD(32768) and expects a reader's buffer to be that large); a larger one is refused
#: (MSG_TRUNC tells its size), never read cut short.
_DATAGRAM_ROOM = 1 << 16


class _DiagSocket:
    """One thread's sock_diag socket and receive buffer, kept from one dump to the next (_diag()).

    A fresh socket per dump cost a socket() and a close() each, and a fresh 1 MiB bytes per recv
    cost glibc an mmap, an mremap and a munmap each (with a TLB shootdown of the other threads):
    about 5% of an SSH agent's CPU at 1 Hz, for the ~5 datagrams of a quiet host's reading."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.buf = bytearray(_DATAGRAM_ROOM)

    def open_socket(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        return self.sock

    def discard(self) -> None:
        """Close the socket (a dump left half read would answer the next request with its rest)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __del__(self) -> None:  # the thread ended: its socket goes with it
        self.discard()


_per_thread = threading.local()


def _diag() -> _DiagSocket:
    diag: _DiagSocket | None = getattr(_per_thread, "diag", None)
    if diag is None:
        diag = _per_thread.diag = _DiagSocket()
    return diag


def dump(family: int, protocol: int, time_wait: TimeWait | None = None) -> list[list[Any]]:
    """All sockets of one family (AF_INET/AF_INET6) and protocol (TCP/UDP); see _dump for ``time_wait``."""
    tcp = protocol == socket.IPPROTO_TCP
    ext = 1 << (INET_DIAG_INFO - 1) if tcp else 0
    request = _REQUEST.pack(family, protocol, ext, _ALL_STATES)
    v4: list[list[Any]] = []
    v6: list[list[Any]] = []
    _dump(SOCK_DIAG_BY_FAMILY, request, "tcp" if tcp else "udp", v4, v6, time_wait)
    return v4 if family == socket.AF_INET else v6


def dump_tcp(states: int = _ALL_STATES,
             time_wait: TimeWait | None = None) -> tuple[list[list[Any]], list[list[Any]]]:
    """Every TCP socket (of ``states``, a mask of 1 << state), IPv4 and IPv6, in one walk of the
    kernel's tables: (IPv4 rows, IPv6 rows).

    The sock_diag request names one family, and each TCP dump walks the whole established
    hash, shared by both families (1.5-3 ms however few sockets there are). The older
    TCPDIAG_GETSOCK request still served by the kernel asks for both families at once, so
    one walk does. Each family's rows come in the order a dump of that family alone gives.
    """
    request = _REQUEST_V1.pack(socket.AF_UNSPEC, 0, 0, 1 << (INET_DIAG_INFO - 1), states, 0)
    v4: list[list[Any]] = []
    v6: list[list[Any]] = []
    _dump(TCPDIAG_GETSOCK, request, "tcp", v4, v6, time_wait)
    return v4, v6


def _dump(msg_type: int, request: bytes, proto_name: str, v4: list[list[Any]], v6: list[list[Any]],
          time_wait: TimeWait | None = None) -> None:
    """Run one dump request, appending each socket's row to ``v4`` or ``v6`` by its family.

    With ``time_wait`` (a list), a TIME-WAIT socket is not a row but one (local port, remote) pair in
    it: all a summary needs of one (see TimeWait), at a third of a row's cost."""
    tcp = proto_name == "tcp"
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(request), msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    inet6 = socket.AF_INET6
    # Most sockets share a handful of addresses: each is formatted once, per family (an IPv4 address is
    # the first 4 of the 16 bytes, the rest zero, so it could equal an IPv6 one's bytes).
    names4: dict[bytes, str] = {}
    names6: dict[bytes, str] = {}
    state_names = _STATE_NAMES
    message = _MSG.unpack_from
    ports = _PORTS.unpack_from
    bare = _NLMSGHDR.size + _MSG.size  # a message without attributes: every TIME-WAIT socket's
    remotes: dict[tuple[int, bytes, int], str] = {}  # TIME-WAIT sockets pile up toward a few destinations

    diag = _diag()
    sock, buf = diag.open_socket(), diag.buf
    try:
        sock.send(header + request)
        while True:
            size = sock.recv_into(buf, len(buf), socket.MSG_TRUNC)
            if size > len(buf):
                raise OSError(errno.EMSGSIZE, f"sock_diag sent a {size}-byte datagram, more than {len(buf)}")
            if not size:
                return
            offset = 0
            while offset + _NLMSGHDR.size <= size:
                length, kind = _LENGTH_TYPE.unpack_from(buf, offset)
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -_ERRNO.unpack_from(buf, offset + _NLMSGHDR.size)[0]
                    raise OSError(code, f"sock_diag dump failed: {errno.errorcode.get(code, str(code))}")
                body = offset + _NLMSGHDR.size
                family, state, src, dst, rqueue, wqueue, uid, inode = message(buf, body)
                sport, dport = ports(buf, body + 4)
                if state == TIME_WAIT and time_wait is not None:
                    remote_key = (family, dst, dport)
                    remote_text = remotes.get(remote_key)
                    if remote_text is None:
                        remote_text = remotes[remote_key] = _endpoint(family, dst, dport)
                    time_wait.append((sport, remote_text))
                    offset += (length + 3) & ~3
                    continue
                state_name = state_names[state] if state < len(state_names) else str(state)
                rows, names = (v6, names6) if family == inet6 else (v4, names4)
                src_text = names.get(src)
                if src_text is None:
                    src_text = names[src] = _address(family, src)
                dst_text = names.get(dst)
                if dst_text is None:
                    dst_text = names[dst] = _address(family, dst)
                local = f"{src_text}:{sport}" if sport else f"{src_text}:*"
                remote = f"{dst_text}:{dport}" if dport else f"{dst_text}:*"
                info = None
                if tcp and length > bare:
                    attr, end = body + _MSG.size, offset + length
                    while attr + 4 <= end:
                        attr_len, attr_type = _RTATTR.unpack_from(buf, attr)
                        if attr_len < 4:
                            break
                        if attr_type == INET_DIAG_INFO:
                            room = attr_len - 4
                            if room >= _TCP_INFO.size:
                                info = _TCP_INFO.unpack_from(buf, attr + 4)
                            elif room >= _TCP_INFO_OLD.size:
                                info = (*_TCP_INFO_OLD.unpack_from(buf, attr + 4), None, None)
                            break
                        attr += (attr_len + 3) & ~3
                # Like ss -i: tcp_info only for sockets with a measured RTT (not listeners, not TIME-WAIT).
                if info is not None and info[2]:
                    lastsnd, lastrcv, rtt_us, retrans, acked, received = info
                    rows.append([proto_name, state_name, local, remote, rqueue, wqueue, None, None, uid, inode,
                                 round(rtt_us / 1000.0, 3), retrans, lastsnd, lastrcv, acked, received, False])
                else:
                    rows.append([proto_name, state_name, local, remote, rqueue, wqueue, None, None, uid, inode,
                                 None, None, None, None, None, None, False])
                offset += (length + 3) & ~3
    except BaseException:
        diag.discard()
        raise


def _address(family: int, raw: bytes) -> str:
    """A sockid address as the rows write it: "1.2.3.4" (the first 4 of its 16 bytes) or "[::1]"."""
    if family == socket.AF_INET6:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]"
    return socket.inet_ntop(socket.AF_INET, raw[:4])


def _endpoint(family: int, raw: bytes, port: int) -> str:
    """"1.2.3.4:80" or "[::1]:80" (port 0: "*"), as the rows write an address and port."""
    address = _address(family, raw)
    return f"{address}:{port}" if port else f"{address}:*"


def sockstat(paths: tuple[str, ...] = ("/proc/net/sockstat", "/proc/net/sockstat6")) -> dict[str, int]:
    """The kernel's socket counts for this network namespace: {"TCP.tw": n, "TCP6.inuse": n, ...}."""
    counts: dict[str, int] = {}
    for path in paths:
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            words = rest.split()
            for key, value in zip(words[::2], words[1::2], strict=False):
                if value.isdigit():
                    counts[f"{name}.{key}"] = int(value)
    return counts


def _none_v6(before: dict[str, int], after: dict[str, int], name: str, v4_time_wait: int | None = None) -> bool:
    """True when the counts prove there is no IPv6 socket of ``name`` ("TCP6", "UDP6") to dump.

    ``inuse`` counts the full sockets of a protocol; TIME-WAIT sockets are not among them, but
    sockstat's ``tw`` counts every TIME-WAIT (IPv4 and IPv6): when it equals the IPv4 dump's
    TIME-WAIT rows, before and after that dump, no IPv6 one exists. Anything unreadable or
    changing in between: not proven, dump it.
    """
    key = f"{name}.inuse"
    if before.get(key) != 0 or after.get(key) != 0:
        return False
    if v4_time_wait is None:
        return True
    return before.get("TCP.tw") == after.get("TCP.tw") == v4_time_wait


def dump_all(time_wait: TimeWait | None = None) -> list[list[Any]]:
    """TCP and UDP sockets over IPv4 and IPv6, as rows (no processes yet). Blocking: run in a thread.

    With ``time_wait`` (a list), TIME-WAIT sockets go there as pairs instead of rows (see TimeWait).

    Rows come as tcp4, udp4, tcp6, udp6. TCP is one walk for both families (``dump_tcp``), then one
    UDP dump per family: two reads of /proc/net/sockstat{,6} cost more than the IPv6 UDP dump they
    could spare. Where the kernel refuses the both-families request, TCP is one dump per family, and
    the IPv6 ones are skipped when /proc/net/sockstat{,6} prove there is no IPv6 socket to find
    (``_none_v6``): the TCP walk is the costly one (1.5-3 ms, the whole established hash).
    """
    try:
        tcp4, tcp6 = dump_tcp(time_wait=time_wait)
    except OSError:
        if time_wait is not None:
            del time_wait[:]  # a partial dump's pairs: the one by family counts them again
        return _dump_all_by_family(time_wait)
    return tcp4 + dump(socket.AF_INET, socket.IPPROTO_UDP) + tcp6 + dump(socket.AF_INET6, socket.IPPROTO_UDP)


def _dump_all_by_family(time_wait: TimeWait | None = None) -> list[list[Any]]:
    """dump_all on a kernel without the both-families TCP request."""
    before = sockstat()
    tcp4 = dump(socket.AF_INET, socket.IPPROTO_TCP, time_wait)
    udp4 = dump(socket.AF_INET, socket.IPPROTO_UDP)
    after = sockstat()
    v4_time_wait = len(time_wait) if time_wait is not None else sum(1 for row in tcp4 if row[1] == "TIME-WAIT")
    tcp6 = [] if _none_v6(before, after, "TCP6", v4_time_wait) else \
        dump(socket.AF_INET6, socket.IPPROTO_TCP, time_wait)
    rows = tcp4 + udp4 + tcp6
    if not _none_v6(before, after, "UDP6"):
        rows.extend(dump(socket.AF_INET6, socket.IPPROTO_UDP))
    return rows
