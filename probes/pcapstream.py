"""Packet capture summaries from a pcap byte stream, fast enough to keep up with the wire.

Two halves, both free of scapy at import time:

- ``PcapStream`` turns a byte stream (classic pcap as ``tcpdump -U -w -``
  writes it, or pcapng from a file) into packets, incrementally: feed it
  chunks of any size, from a local tcpdump's pipe, a file or an SSH channel.
- ``CaptureSummary`` counts and classifies every packet on a struct-and-slices
  header path (flows, protocol mix, TCP handshakes per destination, resets by
  side, retransmissions, zero windows, DNS matching by id, TLS records, HTTP
  status lines) and hands only the few packets worth reading (DNS names, TLS
  ClientHellos and alerts, HTTP/1 heads, a sample of the rest) to
  ``probes.dissect``, which imports scapy only when first needed.

``snapshot()`` returns the counts since the previous snapshot as JSON-safe
fields; ``merge()`` adds snapshots over a window, which is what the pane, the
diagnosis rules and ``warroom capture`` show.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO

from probes.samples import JSONValue

# --- link types (https://www.tcpdump.org/linktypes.html) -------------------
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: DLT_RAW has platform-specific numbers in old files; all mean "starts with the IP header".
_RAW_LINKTYPES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})

#: No real link carries frames above this; a larger record length means the stream is corrupt.
MAX_CAPLEN = 262144 + 65536

DEFAULT_DNS_PORTS = (53, 5353, 5355)

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class PcapFormatError(ValueError):
    """The stream is not pcap/pcapng, or is corrupt at ``offset``."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


Packet = tuple[float, int, int, bytes]
"""(timestamp, link type, length on the wire, captured bytes)."""


class PcapStream:
    """Incremental classic-pcap and pcapng reader: ``feed(chunk)`` returns the complete packets.

    It never raises: a corrupt stream sets ``error`` (with ``error_offset``,
    the byte where reading stopped) and ignores everything fed after it, so
    what came before is still summarised. ``close()`` says whether the stream
    ended inside a record (a truncated file, or tcpdump killed mid-write).
    """

    def __init__(self) -> None:
        self._rest = b""
        self.offset = 0
        """Bytes consumed so far (the start of ``_rest`` in the stream)."""
        self.format: str | None = None
        """"pcap" or "pcapng" once the header has been read."""
        self.packets = 0
        self.error: str | None = None
        self.error_offset: int | None = None
        self.snaplen: int | None = None
        self.linktype: int | None = None
        # classic pcap
        self._rec: struct.Struct | None = None
        self._tscale = 1e-6
        # pcapng: per section byte order; per interface (linktype, ts scale, snaplen)
        self._ng_endian = "<"
        self._ng_ifaces: list[tuple[int, float, int]] = []

    def _fail(self, message: str, at: int) -> None:
        self.error = message
        self.error_offset = at
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Packet]:
        if self.error is not None or not chunk:
            return []
        data = self._rest + chunk if self._rest else bytes(chunk)
        out: list[Packet] = []
        try:
            if self.format is None:
                used = self._read_header(data)
                if self.format is None:  # not enough bytes yet, or not a capture at all
                    if self.error is None:
                        self._rest = data
                    return out
                data = data[used:]
                self.offset += used
            used = self._read_pcap(data, out) if self.format == "pcap" else self._read_pcapng(data, out)
        except struct.error as exc:  # defensive: a length check missed; report, never raise
            self._fail(f"corrupt record: {exc}", self.offset)
            return out
        self.offset += used
        self.packets += len(out)
        if self.error is None:
            self._rest = data[used:]
        return out

    def close(self) -> None:
        """Mark the end of the stream; leftover bytes mean it was cut off mid-record."""
        if self.error is not None:
            return
        if self.format is None and not self._rest:
            self._fail("empty: no pcap header", 0)
        elif self.format is None and (self._rest[:4] in _PCAP_MAGIC or self._rest[:4] == _PCAPNG_SHB):
            self._fail(f"truncated: the stream ends inside its {len(self._rest)}-byte-long pcap header", 0)
        elif self.format is None:
            self._fail(f"not a pcap or pcapng file (starts with {self._rest[:4].hex()})", 0)
        elif self._rest:
            self._fail(f"truncated at byte {self.offset}: the stream ends inside a record "
                       f"({len(self._rest)} bytes of it)", self.offset)

    @property
    def pending_bytes(self) -> int:
        return len(self._rest)

    # -- headers -----------------------------------------------------------
    def _read_header(self, data: bytes) -> int:
        """Bytes of file header consumed; sets ``format`` once the header is complete."""
        if len(data) < 4:
            return 0
        magic = data[:4]
        if magic in _PCAP_MAGIC:
            if len(data) < 24:
                return 0
            endian, scale = _PCAP_MAGIC[magic]
            snaplen, network = struct.unpack_from(endian + "II", data, 16)
            self.format = "pcap"
            self._rec = struct.Struct(endian + "IIII")
            self._tscale = scale
            self.snaplen = snaplen
            self.linktype = network & 0x0FFFFFFF  # upper bits carry FCS information
            return 24
        if magic == _PCAPNG_SHB:
            self.format = "pcapng"  # the section header is an ordinary block for the block loop
            return 0
        self._fail(f"not a pcap or pcapng file (starts with {magic.hex()})", 0)
        return 0

    # -- classic pcap ------------------------------------------------------
    def _read_pcap(self, data: bytes, out: list[Packet]) -> int:
        rec = self._rec
        assert rec is not None
        unpack = rec.unpack_from
        lt = self.linktype or 0
        scale = self._tscale
        snap = max(self.snaplen or 0, MAX_CAPLEN)
        n = len(data)
        off = 0
        append = out.append
        while off + 16 <= n:
            sec, frac, incl, orig = unpack(data, off)
            if incl > snap:
                self._fail(f"corrupt record at byte {self.offset + off}: captured length {incl} "
                           f"is larger than any frame", self.offset + off)
                return off
            end = off + 16 + incl
            if end > n:
                break
            append((sec + frac * scale, lt, orig if orig >= incl else incl, data[off + 16:end]))
            off = end
        return off

    # -- pcapng ------------------------------------------------------------
    def _read_pcapng(self, data: bytes, out: list[Packet]) -> int:
        n = len(data)
        off = 0
        while off + 12 <= n:
            btype_raw = data[off:off + 4]
            if btype_raw == _PCAPNG_SHB:
                bom = data[off + 8:off + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    self._ng_endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    self._ng_endian = ">"
                else:
                    self._fail(f"corrupt pcapng section header at byte {self.offset + off}", self.offset + off)
                    return off
                self._ng_ifaces = []
            e = self._ng_endian
            btype, blen = struct.unpack_from(e + "II", data, off)
            if blen < 12 or blen % 4 or blen > MAX_CAPLEN + 4096:
                self._fail(f"corrupt pcapng block at byte {self.offset + off}: length {blen}", self.offset + off)
                return off
            if off + blen > n:
                break
            body = off + 8
            end = off + blen - 4
            if struct.unpack_from(e + "I", data, end)[0] != blen:
                self._fail(f"corrupt pcapng block at byte {self.offset + off}: trailing length mismatch",
                           self.offset + off)
                return off
            if btype == 6 and end - body >= 20:  # Enhanced Packet Block
                iface, ts_hi, ts_lo, incl, orig = struct.unpack_from(e + "IIIII", data, body)
                if iface < len(self._ng_ifaces) and body + 20 + incl <= end:
                    lt, scale, _snap = self._ng_ifaces[iface]
                    out.append((((ts_hi << 32) | ts_lo) * scale, lt, max(orig, incl),
                                data[body + 20:body + 20 + incl]))
            elif btype == 3 and end - body >= 4 and self._ng_ifaces:  # Simple Packet Block
                orig = struct.unpack_from(e + "I", data, body)[0]
                lt, _scale, snap = self._ng_ifaces[0]
                incl = min(orig, snap or orig, end - body - 4)
                out.append((0.0, lt, orig, data[body + 4:body + 4 + incl]))
            elif btype == 1 and end - body >= 8:  # Interface Description Block
                lt, _res, snap = struct.unpack_from(e + "HHI", data, body)
                self._ng_ifaces.append((lt, _ng_tsresol(data, body + 8, end, e), snap))
                if self.linktype is None:
                    self.linktype, self.snaplen = lt, snap
            off += blen
        return off


def _ng_tsresol(data: bytes, off: int, end: int, e: str) -> float:
    """The if_tsresol option of an IDB (default microseconds)."""
    while off + 4 <= end:
        code, length = struct.unpack_from(e + "HH", data, off)
        if code == 0:
            break
        if code == 9 and length >= 1 and off + 5 <= end:
            raw = data[off + 4]
            return 2.0 ** -(raw & 0x7F) if raw & 0x80 else 10.0 ** -raw
        off += 4 + ((length + 3) & ~3)
    return 1e-6




# --- writing pcap (the header ring's export) --------------------------------
def write_pcap(out: BinaryIO, packets: Iterable[Packet], linktype: int, snaplen: int = 65535) -> int:
    """Write classic microsecond pcap (what Wireshark and tcpdump -r read); returns packets written.

    Packets of another link type than ``linktype`` are left out: one classic
    pcap file carries one link type.
    """
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
    rec = struct.Struct("<IIII")
    written = 0
    for ts, lt, wirelen, data in packets:
        if lt != linktype:
            continue
        sec = int(ts)
        usec = min(round((ts - sec) * 1e6), 999999)
        data = data[:snaplen]
        out.write(rec.pack(sec, usec, len(data), max(wirelen, len(data))))
        out.write(data)
        written += 1
    return written


# --- the summariser ---------------------------------------------------------
_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6", 2: "igmp", 47: "gre", 50: "esp", 132: "sctp"}
_V6_EXT = frozenset({0, 43, 60})
_HTTP_METHODS = frozenset({b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"PATC", b"OPTI", b"CONN", b"TRAC"})
_M32 = 0xFFFFFFFF
_HALF = 0x80000000

# Per-destination TCP counters, by position in a list (a list index is cheaper than a dict key).
DEST_FIELDS = ("syn", "synack", "refused", "unanswered", "syn_retrans", "rst_server", "rst_client",
               "retrans", "zero_window", "connect_ms_sum", "connect_ms_max")
_SYN, _SYNACK, _REFUSED, _UNANSWERED, _SYNRETRANS, _RSTS, _RSTC, _RETRANS, _ZWIN, _CMSUM, _CMMAX = range(11)

#: Bounds on state kept between packets, so a scan or a flood costs bounded memory.
MAX_FLOWS_PER_INTERVAL = 50_000
MAX_TRACKED = 100_000
MAX_LATENCIES = 200
MAX_PACKET_SAMPLES = 5


def _ip_text(raw: bytes) -> str:
    if len(raw) == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    import ipaddress  # only IPv6 needs it

    return str(ipaddress.IPv6Address(raw))


_ENDPOINTS: dict[tuple[bytes, int], str] = {}


def endpoint(raw: bytes, port: int) -> str:
    """ip:port, with IPv6 addresses bracketed (cached: a retransmission storm formats the same few)."""
    key = (raw, port)
    text = _ENDPOINTS.get(key)
    if text is None:
        if len(_ENDPOINTS) >= 4096:
            _ENDPOINTS.clear()
        ip = _ip_text(raw)
        text = _ENDPOINTS[key] = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    return text


def _bump(table: dict[Any, list[int]], key: Any, pkts: int = 1, nbytes: int = 0) -> None:
    row = table.get(key)
    if row is None:
        table[key] = [pkts, nbytes]
    else:
        row[0] += pkts
        row[1] += nbytes


class Dissector:
    """What the summariser asks of the slow path; probes.dissect.ScapyDissector implements it with scapy."""

    def dns_question(self, payload: bytes) -> tuple[str, str] | None:
        return None

    def tls_client_hello(self, payload: bytes) -> tuple[str, str] | None:
        return None

    def tls_alert_name(self, description: int) -> str:
        return f"alert {description}"

    def http_host(self, payload: bytes) -> str | None:
        return None

    def summary(self, linktype: int, frame: bytes) -> str | None:
        return None


class CaptureSummary:
    """Counts and classifies packets on a header path; see the module docstring."""

    def __init__(self, *, dns_ports: Sequence[int] = DEFAULT_DNS_PORTS, handshake_timeout: float = 3.0,
                 dns_timeout: float = 3.0, ring_size: int = 1000, top: int = 10,
                 dissect_budget: int | None = 1000, sample_every: int = 10_000,
                 dissector: Dissector | None = None) -> None:
        self.dns_ports = frozenset(int(p) for p in dns_ports)
        self.handshake_timeout = handshake_timeout
        self.dns_timeout = dns_timeout
        self.top = top
        self.dissect_budget = dissect_budget
        """Slow-path dissections allowed per snapshot interval (None: no limit, for files)."""
        self.sample_every = max(1, sample_every)
        self.dissector: Dissector = dissector if dissector is not None else Dissector()
        self.ring: deque[tuple[float, int, int, bytes, int]] = deque(maxlen=max(0, ring_size))
        """The last packets as (ts, linktype, wirelen, frame, header length): frames are cut to their
        headers (link, IP, TCP/UDP/ICMP) when they leave, so no payload is ever exported; the frame
        itself is referenced, not copied, because copying a slice per packet costs the hot path."""
        # totals over the whole capture
        self.packets = 0
        self._bytes_before = 0
        self.first_ts: float | None = None
        self.last_ts = 0.0
        self._last_wall = time.time()
        self.parse_errors = 0
        # state that outlives one interval (bounded by MAX_TRACKED)
        self._pending_syn: dict[tuple[bytes, int, bytes, int], tuple[float, str]] = {}
        self._servers: dict[tuple[bytes, int], None] = {}
        self._seq_hi: dict[tuple[bytes, int, bytes, int], int] = {}
        self._dns_pending: dict[tuple[bytes, int, bytes, int, int], list[Any]] = {}
        self._http_host: dict[tuple[bytes, int, bytes, int], str] = {}
        self._other_seen = 0
        self._reset_interval()

    @property
    def total_bytes(self) -> int:
        """Bytes on the wire over the whole capture."""
        return self._bytes_before + self.i_bytes

    # -- interval state ----------------------------------------------------
    def _reset_interval(self) -> None:
        self.i_start = self.last_ts
        self.i_packets = 0
        self.i_bytes = 0
        # tcp and udp rows exist from the start so the hot path updates them without a lookup
        self._c_tcp = [0, 0]
        self._c_udp = [0, 0]
        self.i_proto: dict[str, list[int]] = {"tcp": self._c_tcp, "udp": self._c_udp}
        self.i_flows: dict[tuple[int, bytes, int, bytes, int], list[int]] = {}
        self.i_flows_dropped = 0
        self.i_dest: dict[str, list[Any]] = {}
        self.i_tcp_data = 0
        self.i_retrans = 0
        self.i_zero_window = 0
        self.i_rst = 0
        self.i_dns_queries = 0
        self.i_dns_responses = 0
        self.i_dns_retries = 0
        self.i_dns_unmatched = 0
        self.i_dns_rcodes: dict[str, int] = {}
        self.i_dns_names: dict[tuple[str, str, str, str], list[float]] = {}
        self.i_dns_lat: list[float] = []
        self.i_tls_hellos: dict[tuple[str, str], int] = {}
        self.i_tls_alerts: dict[tuple[str, str, str], int] = {}
        self.i_tls_encrypted_alerts = 0
        self.i_http: dict[tuple[str, int], int] = {}
        self.i_samples: list[tuple[int, bytes]] = []
        self.i_dissected = 0
        self.i_dissect_skipped = 0
        self._budget = self.dissect_budget

    def _dest_row(self, dest: str) -> list[Any]:
        row = self.i_dest.get(dest)
        if row is None:
            row = self.i_dest[dest] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0]
        return row

    def _may_dissect(self) -> bool:
        if self._budget is None:
            self.i_dissected += 1
            return True
        if self._budget > 0:
            self._budget -= 1
            self.i_dissected += 1
            return True
        self.i_dissect_skipped += 1
        return False

    def _server_side(self, src: bytes, sport: int, dst: bytes, dport: int) -> tuple[bool, str]:
        """(did src send from the server side?, the server endpoint) for a packet src->dst."""
        servers = self._servers
        if (src, sport) in servers:
            return True, endpoint(src, sport)
        if (dst, dport) in servers:
            return False, endpoint(dst, dport)
        # Connection seen without its handshake: the lower port is most likely the service.
        if sport < dport:
            return True, endpoint(src, sport)
        return False, endpoint(dst, dport)

    def _mark_server(self, ip: bytes, port: int) -> None:
        servers = self._servers
        if (ip, port) not in servers:
            if len(servers) >= MAX_TRACKED:
                servers.pop(next(iter(servers)))
            servers[(ip, port)] = None

    # -- the fast path -----------------------------------------------------
    def add(self, ts: float, linktype: int, wirelen: int, frame: bytes) -> None:
        self.add_packets([(ts, linktype, wirelen, frame)])

    def add_packets(self, packets: Sequence[Packet]) -> None:
        """Count and classify packets. Never raises: a frame it cannot read counts as a parse error."""
        if not packets:
            return
        count = len(packets)
        self.packets += count
        self.i_packets += count
        if self.first_ts is None:
            self.first_ts = self.i_start = packets[0][0]
        last = packets[-1][0]
        if last > self.last_ts:
            self.last_ts = last
        add = self._add
        for pkt in packets:
            try:
                add(*pkt)
            except (IndexError, struct.error, ValueError):
                self.parse_errors += 1
        self._last_wall = time.time()

    def _add(self, ts: float, lt: int, wirelen: int, f: bytes) -> None:
        self.i_bytes += wirelen
        n = len(f)
        # link layer -> ethertype and where the network header starts
        if lt == 1:
            if n < 14:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            et = (f[12] << 8) | f[13]
            off = 14
            if (et == 0x8100 or et == 0x88A8) and n >= 18:
                et = (f[16] << 8) | f[17]
                off = 18
                if et == 0x8100 and n >= 22:
                    et = (f[20] << 8) | f[21]
                    off = 22
        elif lt == 113:
            if n < 16:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            et = (f[14] << 8) | f[15]
            off = 16
        elif lt == 276:
            if n < 20:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            et = (f[0] << 8) | f[1]
            off = 20
        elif lt in _RAW_LINKTYPES:
            if n < 1:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            version = f[0] >> 4
            et = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
            off = 0
        elif lt == 0 or lt == 108:
            if n < 4:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            family = f[0] or f[3]  # host byte order for NULL, network order for LOOP
            et = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
            off = 4
        else:
            _bump(self.i_proto, f"linktype-{lt}", 1, wirelen)
            return
        # network layer
        if et == 0x0800:
            if n < off + 20:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            ihl = (f[off] & 15) * 4
            proto = f[off + 9]
            src = f[off + 12:off + 16]
            dst = f[off + 16:off + 20]
            l4 = off + ihl
            ip_end = off + ((f[off + 2] << 8) | f[off + 3])
            if ihl < 20 or ip_end < l4:
                _bump(self.i_proto, "ipv4-bad", 1, wirelen)
                return
            if ((f[off + 6] & 0x1F) << 8) | f[off + 7]:
                _bump(self.i_proto, "ipv4-fragment", 1, wirelen)
                return
        elif et == 0x86DD:
            if n < off + 40:
                _bump(self.i_proto, "short", 1, wirelen)
                return
            proto = f[off + 6]
            src = f[off + 8:off + 24]
            dst = f[off + 24:off + 40]
            l4 = off + 40
            plen6 = (f[off + 4] << 8) | f[off + 5]
            ip_end = l4 + plen6 if plen6 else off + wirelen
            hops = 0
            while proto in _V6_EXT and l4 + 2 <= n and hops < 8:
                proto = f[l4]
                l4 += (f[l4 + 1] + 1) * 8
                hops += 1
            if proto == 44 and l4 + 8 <= n:
                fragment_offset = ((f[l4 + 2] << 8) | f[l4 + 3]) >> 3
                proto = f[l4]
                l4 += 8
                if fragment_offset:
                    _bump(self.i_proto, "ipv6-fragment", 1, wirelen)
                    return
        elif et == 0x0806:
            _bump(self.i_proto, "arp", 1, wirelen)
            self._maybe_sample(lt, f)
            return
        else:
            _bump(self.i_proto, "other", 1, wirelen)
            self._maybe_sample(lt, f)
            return
        ring = self.ring
        if proto == 6:
            if n < l4 + 20:
                _bump(self.i_proto, "tcp", 1, wirelen)
                return
            sport = (f[l4] << 8) | f[l4 + 1]
            dport = (f[l4 + 2] << 8) | f[l4 + 3]
            seq = int.from_bytes(f[l4 + 4:l4 + 8], "big")
            thl = (f[l4 + 12] >> 4) * 4
            flags = f[l4 + 13]
            window = (f[l4 + 14] << 8) | f[l4 + 15]
            pay = l4 + thl
            plen = ip_end - pay
            if plen < 0:
                plen = 0
            c = self._c_tcp
            c[0] += 1
            c[1] += wirelen
            key = (6, src, sport, dst, dport)
            flows = self.i_flows
            row = flows.get(key)
            if row is not None:
                row[0] += 1
                row[1] += wirelen
            else:
                self._new_flow(key, wirelen)
            if ring.maxlen:
                ring.append((ts, lt, wirelen, f, pay))  # cut to the headers when exported
            if not self.i_samples:
                self._take_sample(lt, f)  # the first packet of each interval gets scapy's one-line summary
            self._tcp(ts, src, sport, dst, dport, seq, flags, window, plen, f, pay)
        elif proto == 17:
            if n < l4 + 8:
                _bump(self.i_proto, "udp", 1, wirelen)
                return
            sport = (f[l4] << 8) | f[l4 + 1]
            dport = (f[l4 + 2] << 8) | f[l4 + 3]
            c = self._c_udp
            c[0] += 1
            c[1] += wirelen
            key = (17, src, sport, dst, dport)
            flows = self.i_flows
            row = flows.get(key)
            if row is not None:
                row[0] += 1
                row[1] += wirelen
            else:
                self._new_flow(key, wirelen)
            if ring.maxlen:
                ring.append((ts, lt, wirelen, f, l4 + 8))
            if sport in self.dns_ports or dport in self.dns_ports:
                self._dns(ts, src, sport, dst, dport, f, l4 + 8)
            else:
                self._other_seen += 1
                if not self.i_samples or self._other_seen % self.sample_every == 1:
                    self._take_sample(lt, f)
        else:
            name = _PROTO_NAMES.get(proto) or f"ip-proto-{proto}"
            _bump(self.i_proto, name, 1, wirelen)
            self._flow(proto, src, 0, dst, 0, wirelen)
            if ring.maxlen:
                ring.append((ts, lt, wirelen, f, min(n, l4 + 8)))
            self._maybe_sample(lt, f)

    def _flow(self, proto: int, src: bytes, sport: int, dst: bytes, dport: int, wirelen: int) -> None:
        key = (proto, src, sport, dst, dport)
        row = self.i_flows.get(key)
        if row is not None:
            row[0] += 1
            row[1] += wirelen
        else:
            self._new_flow(key, wirelen)

    def _new_flow(self, key: tuple[int, bytes, int, bytes, int], wirelen: int) -> None:
        if len(self.i_flows) < MAX_FLOWS_PER_INTERVAL:
            self.i_flows[key] = [1, wirelen]
        else:
            self.i_flows_dropped += 1

    def _maybe_sample(self, lt: int, f: bytes) -> None:
        """Keep the first packet of each interval and every ``sample_every``-th for scapy's one-line summary."""
        self._other_seen += 1
        if not self.i_samples or self._other_seen % self.sample_every == 1:
            self._take_sample(lt, f)

    def _take_sample(self, lt: int, f: bytes) -> None:
        if len(self.i_samples) < MAX_PACKET_SAMPLES:
            self.i_samples.append((lt, f))

    def _tcp(self, ts: float, src: bytes, sport: int, dst: bytes, dport: int, seq: int, flags: int,
             window: int, plen: int, f: bytes, pay: int) -> None:
        if flags & 0x02:  # SYN or SYN-ACK
            if flags & 0x10:
                pending = self._pending_syn.pop((dst, dport, src, sport), None)
                self._mark_server(src, sport)
                self._seq_hi.pop((src, sport, dst, dport), None)  # the server's new sequence, not a reused tuple's
                if pending is not None:
                    row = self._dest_row(pending[1])
                    row[_SYNACK] += 1
                    ms = (ts - pending[0]) * 1000.0
                    row[_CMSUM] += ms
                    if ms > row[_CMMAX]:
                        row[_CMMAX] = ms
            else:
                key = (src, sport, dst, dport)
                pending = self._pending_syn.get(key)
                if pending is not None:
                    self._dest_row(pending[1])[_SYNRETRANS] += 1
                else:
                    dest = endpoint(dst, dport)
                    if len(self._pending_syn) >= MAX_TRACKED:
                        self._pending_syn.pop(next(iter(self._pending_syn)))
                    self._pending_syn[key] = (ts, dest)
                    self._dest_row(dest)[_SYN] += 1
                    self._mark_server(dst, dport)
                self._seq_hi.pop(key, None)  # a new connection on a reused port starts a new sequence
            return
        if flags & 0x04:  # RST
            self.i_rst += 1
            pending = self._pending_syn.pop((dst, dport, src, sport), None)
            if pending is not None:
                self._dest_row(pending[1])[_REFUSED] += 1
            else:
                from_server, dest = self._server_side(src, sport, dst, dport)
                self._dest_row(dest)[_RSTS if from_server else _RSTC] += 1
            self._seq_hi.pop((src, sport, dst, dport), None)
            self._seq_hi.pop((dst, dport, src, sport), None)
            return
        if window == 0:
            self.i_zero_window += 1
            self._dest_row(self._server_side(src, sport, dst, dport)[1])[_ZWIN] += 1
        fin = flags & 0x01
        used = plen + fin
        if not used:
            return
        key = (src, sport, dst, dport)
        end = (seq + used) & _M32
        seq_hi = self._seq_hi
        hi = seq_hi.get(key)
        if hi is None:
            if len(seq_hi) >= MAX_TRACKED:
                seq_hi.pop(next(iter(seq_hi)))
            seq_hi[key] = end
        else:
            ahead = (end - hi) & _M32
            if ahead and ahead < _HALF:
                seq_hi[key] = end
            elif not (plen == 1 and not fin and ((hi - seq) & _M32) == 1):  # a keep-alive probe is not a retransmit
                self.i_retrans += 1
                self._dest_row(self._server_side(src, sport, dst, dport)[1])[_RETRANS] += 1
        if plen <= 0:
            return
        self.i_tcp_data += 1
        n = len(f)
        if pay + 6 > n:
            return
        first = f[pay]
        if (first == 0x16 or first == 0x15) and f[pay + 1] == 3:
            self._tls(src, sport, dst, dport, first, f, pay)
        elif first == 0x48 and f[pay:pay + 7] == b"HTTP/1." and pay + 12 <= n:
            code = f[pay + 9:pay + 12]
            if code.isdigit():
                host = self._http_host.get((dst, dport, src, sport)) or endpoint(src, sport)
                key2 = (host, int(code))
                self.i_http[key2] = self.i_http.get(key2, 0) + 1
        elif f[pay:pay + 4] in _HTTP_METHODS and self._may_dissect():
            req_host = self.dissector.http_host(f[pay:])
            if req_host:
                if len(self._http_host) >= MAX_TRACKED:
                    self._http_host.pop(next(iter(self._http_host)))
                self._http_host[(src, sport, dst, dport)] = req_host

    def _tls(self, src: bytes, sport: int, dst: bytes, dport: int, content_type: int, f: bytes,
             pay: int) -> None:
        n = len(f)
        length = (f[pay + 3] << 8) | f[pay + 4]
        if content_type == 0x15:
            from_server, _ = self._server_side(src, sport, dst, dport)
            if length == 2 and pay + 7 <= n:
                level = "fatal" if f[pay + 5] == 2 else "warning" if f[pay + 5] == 1 else str(f[pay + 5])
                key = (self.dissector.tls_alert_name(f[pay + 6]), level, "server" if from_server else "client")
                self.i_tls_alerts[key] = self.i_tls_alerts.get(key, 0) + 1
            else:
                self.i_tls_encrypted_alerts += 1  # after ChangeCipherSpec the alert itself is encrypted
            return
        if f[pay + 5] != 1:  # only the ClientHello is read
            return
        hello: tuple[str, str] | None = None
        if self._may_dissect():
            hello = self.dissector.tls_client_hello(f[pay:])
        hello_key = hello if hello is not None else ("?", "?")
        self.i_tls_hellos[hello_key] = self.i_tls_hellos.get(hello_key, 0) + 1

    def _dns(self, ts: float, src: bytes, sport: int, dst: bytes, dport: int, f: bytes, p0: int) -> None:
        if len(f) < p0 + 12:
            return
        ident = (f[p0] << 8) | f[p0 + 1]
        rcode = f[p0 + 3] & 15
        if not f[p0 + 2] & 0x80:  # query
            key = (src, sport, dst, dport, ident)
            if key in self._dns_pending:
                self.i_dns_retries += 1
                return
            self.i_dns_queries += 1
            question = self.dissector.dns_question(f[p0:]) if self._may_dissect() else None
            qname, qtype = question if question is not None else ("?", "?")
            if len(self._dns_pending) >= MAX_TRACKED:
                self._dns_pending.pop(next(iter(self._dns_pending)))
            self._dns_pending[key] = [ts, qname, qtype, endpoint(dst, dport)]
            return
        self.i_dns_responses += 1
        outcome = RCODES.get(rcode, f"RCODE{rcode}")
        self.i_dns_rcodes[outcome] = self.i_dns_rcodes.get(outcome, 0) + 1
        pending = self._dns_pending.pop((dst, dport, src, sport, ident), None)
        if pending is None:
            self.i_dns_unmatched += 1
            question = self.dissector.dns_question(f[p0:]) if self._may_dissect() else None
            qname, qtype = question if question is not None else ("?", "?")
            self._dns_name(qname, qtype, outcome, endpoint(src, sport), None)
            return
        ms = (ts - pending[0]) * 1000.0
        if len(self.i_dns_lat) < MAX_LATENCIES:
            self.i_dns_lat.append(round(ms, 3))
        self._dns_name(pending[1], pending[2], outcome, pending[3], ms)

    def _dns_name(self, qname: str, qtype: str, outcome: str, server: str, ms: float | None) -> None:
        key = (qname, qtype, outcome, server)
        row = self.i_dns_names.get(key)
        if row is None:
            row = self.i_dns_names[key] = [0, 0.0, 0.0, 0]
        row[0] += 1
        if ms is not None:
            row[1] += ms
            row[2] = max(row[2], ms)
            row[3] += 1

    # -- time-outs and snapshots ------------------------------------------
    def capture_now(self) -> float:
        """'Now' on the capture's clock: the last packet's time plus the wall time since it arrived.

        Using the capture's own clock keeps time-outs right when the packets come
        from a remote host whose clock differs from ours.
        """
        if self.first_ts is None:
            return time.time()
        return self.last_ts + max(0.0, time.time() - self._last_wall)

    def expire(self, now: float | None = None, *, everything: bool = False) -> None:
        """Count SYNs and DNS queries that got no answer in time (all of them at the end of a file)."""
        now = self.capture_now() if now is None else now
        cutoff = now - self.handshake_timeout
        pending = self._pending_syn
        while pending:
            key = next(iter(pending))
            first, dest = pending[key]
            if not everything and first > cutoff:
                break
            del pending[key]
            self._dest_row(dest)[_UNANSWERED] += 1
        cutoff = now - self.dns_timeout
        dns = self._dns_pending
        while dns:
            key5 = next(iter(dns))
            first, qname, qtype, server = dns[key5]
            if not everything and first > cutoff:
                break
            del dns[key5]
            self._dns_name(qname, qtype, "unanswered", server, None)

    def snapshot(self, *, final: bool = False, now: float | None = None) -> dict[str, JSONValue]:
        """The counts since the last snapshot as JSON-safe fields, and start a new interval."""
        self.expire(now, everything=final)
        # A file's interval ends at its last packet; a live one at "now" on the capture's clock.
        live_end = now if now is not None else self.capture_now()
        end = self.last_ts if final else live_end
        duration = max(0.0, end - self.i_start) if self.first_ts is not None else 0.0
        flows = self.i_flows
        keys = set(sorted(flows, key=lambda k: flows[k][1], reverse=True)[:self.top])
        keys.update(sorted(flows, key=lambda k: flows[k][0], reverse=True)[:self.top])
        top_flows: list[JSONValue] = [
            [_PROTO_NAMES.get(k[0]) or str(k[0]),
             endpoint(k[1], k[2]) if k[2] or k[0] in (6, 17) else _ip_text(k[1]),
             endpoint(k[3], k[4]) if k[4] or k[0] in (6, 17) else _ip_text(k[3]),
             flows[k][0], flows[k][1]]
            for k in sorted(keys, key=lambda k: flows[k][1], reverse=True)
        ]
        dests: dict[str, JSONValue] = {}
        for dest, row in _capped_dests(self.i_dest).items():
            entry: dict[str, JSONValue] = dict(zip(DEST_FIELDS, row, strict=True))
            entry["connect_ms_sum"] = round(row[_CMSUM], 3)
            entry["connect_ms_max"] = round(row[_CMMAX], 3)
            dests[dest] = entry
        samples: list[JSONValue] = []
        for lt, frame in self.i_samples:
            text = self.dissector.summary(lt, frame)
            if text:
                samples.append(text)
        fields: dict[str, JSONValue] = {
            "start": self.i_start,
            "duration": round(duration, 6),
            "packets": self.i_packets,
            "bytes": self.i_bytes,
            "proto": {k: list(v) for k, v in self.i_proto.items() if v[0]},
            "flows": top_flows,
            "flow_count": len(flows) + self.i_flows_dropped,
            "tcp": {"dest": dests, "data_segments": self.i_tcp_data, "retrans": self.i_retrans,
                    "zero_window": self.i_zero_window, "rst": self.i_rst},
            "dns": {"queries": self.i_dns_queries, "responses": self.i_dns_responses,
                    "retries": self.i_dns_retries, "unmatched": self.i_dns_unmatched,
                    "rcodes": dict(self.i_dns_rcodes),
                    "names": [[q, t, o, s, r[0], round(r[1], 3), round(r[2], 3), r[3]]
                              for (q, t, o, s), r in _capped_names(self.i_dns_names).items()],
                    "latency_ms": list(self.i_dns_lat)},
            "tls": {"hellos": [[sni, ver, c] for (sni, ver), c in
                               _capped_counts(self.i_tls_hellos, ("(others)", "")).items()],
                    "alerts": [[d, lv, side, c] for (d, lv, side), c in self.i_tls_alerts.items()],
                    "encrypted_alerts": self.i_tls_encrypted_alerts},
            "http": [[h, code, c] for (h, code), c in _capped_counts(self.i_http, ("(others)", 0)).items()],
            "samples": samples,
            "parse": {"errors": self.parse_errors, "dissected": self.i_dissected,
                      "dissect_skipped": self.i_dissect_skipped,
                      "pending_syn": len(self._pending_syn), "pending_dns": len(self._dns_pending)},
        }
        self._bytes_before += self.i_bytes
        self._reset_interval()
        self.i_start = end
        return fields

    def ring_packets(self) -> list[Packet]:
        """The last packets, headers only."""
        # list() copies in one step under the GIL: the capture thread may be appending meanwhile.
        return [(ts, lt, wirelen, frame[:cut]) for ts, lt, wirelen, frame, cut in list(self.ring)]

    def export_ring(self, path: str) -> int:
        """Write the header ring to a pcap file; returns how many packets it holds."""
        packets = self.ring_packets()
        linktype = packets[-1][1] if packets else LINKTYPE_ETHERNET
        snap = max((len(p[3]) for p in packets), default=0)
        with open(path, "wb") as out:
            return write_pcap(out, packets, linktype, snaplen=max(snap, 64))


# --- keeping one snapshot small -----------------------------------------------
#: Rows one snapshot lists per table; the rest are added into one "(N others)" row, so a port scan or a
#: flood of random DNS names costs a bounded Sample, not one row per target.
MAX_ROWS = 50


def _capped_dests(table: dict[str, list[Any]]) -> dict[str, list[Any]]:
    if len(table) <= MAX_ROWS:
        return table

    def weight(row: list[Any]) -> int:
        return int(sum(row[:_CMSUM]))

    ordered = sorted(table.items(), key=lambda kv: -weight(kv[1]))
    kept = dict(ordered[:MAX_ROWS - 1])
    rest = [row for _dest, row in ordered[MAX_ROWS - 1:]]
    other = [sum(col) for col in zip(*(r[:_CMSUM] for r in rest), strict=True)]
    other += [sum(r[_CMSUM] for r in rest), max(r[_CMMAX] for r in rest)]
    kept[f"({len(rest)} others)"] = other
    return kept


def _capped_names(table: dict[tuple[str, str, str, str], list[float]]) -> dict[tuple[str, str, str, str], list[float]]:
    if len(table) <= MAX_ROWS:
        return table
    ordered = sorted(table.items(), key=lambda kv: -kv[1][0])
    kept = dict(ordered[:MAX_ROWS - 1])
    for (_q, _t, outcome, _s), row in ordered[MAX_ROWS - 1:]:
        acc = kept.setdefault(("(others)", "", outcome, ""), [0, 0.0, 0.0, 0])
        acc[0] += row[0]
        acc[1] += row[1]
        acc[2] = max(acc[2], row[2])
        acc[3] += row[3]
    return kept


def _capped_counts(table: dict[Any, int], other_key: Any) -> dict[Any, int]:
    if len(table) <= MAX_ROWS:
        return table
    ordered = sorted(table.items(), key=lambda kv: -kv[1])
    kept = dict(ordered[:MAX_ROWS - 1])
    kept[other_key] = kept.get(other_key, 0) + sum(c for _k, c in ordered[MAX_ROWS - 1:])
    return kept


# --- merging snapshots over a window ---------------------------------------
def merge(snapshots: Sequence[dict[str, Any]], top: int = 10) -> dict[str, Any]:
    """Add up snapshot fields (as ``CaptureSummary.snapshot`` makes them) into one summary.

    Totals add exactly; flows add per flow over what each snapshot listed
    (each lists its own top flows, so a flow that was never in a snapshot's
    top is under-counted: the header says how many flows there were).
    """
    out: dict[str, Any] = {"packets": 0, "bytes": 0, "duration": 0.0, "snapshots": len(snapshots)}
    proto: dict[str, list[int]] = {}
    flows: dict[tuple[str, str, str], list[int]] = {}
    dests: dict[str, dict[str, float]] = {}
    tcp_tot = {"data_segments": 0, "retrans": 0, "zero_window": 0, "rst": 0}
    dns_tot = {"queries": 0, "responses": 0, "retries": 0, "unmatched": 0}
    rcodes: dict[str, int] = {}
    names: dict[tuple[str, str, str, str], list[float]] = {}
    latencies: list[float] = []
    hellos: dict[tuple[str, str], int] = {}
    alerts: dict[tuple[str, str, str], int] = {}
    encrypted_alerts = 0
    http: dict[tuple[str, int], int] = {}
    samples: list[str] = []
    flow_count = 0
    rates: list[list[float]] = []
    for snap in snapshots:
        packets = int(snap.get("packets", 0))
        out["packets"] += packets
        out["bytes"] += int(snap.get("bytes", 0))
        duration = float(snap.get("duration", 0.0) or 0.0)
        out["duration"] += duration
        rates.append([float(snap.get("start", 0.0) or 0.0), packets / duration if duration > 0 else float(packets),
                      int(snap.get("bytes", 0)) / duration if duration > 0 else float(snap.get("bytes", 0))])
        flow_count = max(flow_count, int(snap.get("flow_count", 0)))
        for name, (p, b) in (snap.get("proto") or {}).items():
            _bump(proto, name, p, b)
        for proto_name, a, b, p, nb in snap.get("flows") or []:
            _bump(flows, (proto_name, a, b), p, nb)
        tcp = snap.get("tcp") or {}
        for key in tcp_tot:
            tcp_tot[key] += int(tcp.get(key, 0))
        for dest, row in (tcp.get("dest") or {}).items():
            acc = dests.setdefault(dest, dict.fromkeys(DEST_FIELDS, 0))
            for k in DEST_FIELDS:
                if k == "connect_ms_max":
                    acc[k] = max(acc[k], row.get(k, 0))
                else:
                    acc[k] += row.get(k, 0)
        dns = snap.get("dns") or {}
        for key in dns_tot:
            dns_tot[key] += int(dns.get(key, 0))
        for code, count in (dns.get("rcodes") or {}).items():
            rcodes[code] = rcodes.get(code, 0) + count
        for q, t, o, s, count, lat_sum, lat_max, lat_n in dns.get("names") or []:
            row = names.setdefault((q, t, o, s), [0, 0.0, 0.0, 0])
            row[0] += count
            row[1] += lat_sum
            row[2] = max(row[2], lat_max)
            row[3] += lat_n
        latencies.extend(dns.get("latency_ms") or [])
        tls = snap.get("tls") or {}
        for sni, ver, count in tls.get("hellos") or []:
            hellos[(sni, ver)] = hellos.get((sni, ver), 0) + count
        for desc, level, side, count in tls.get("alerts") or []:
            alerts[(desc, level, side)] = alerts.get((desc, level, side), 0) + count
        encrypted_alerts += int(tls.get("encrypted_alerts", 0))
        for host, code, count in snap.get("http") or []:
            http[(host, code)] = http.get((host, code), 0) + count
        samples.extend(snap.get("samples") or [])
    unanswered_dns = sum(int(r[0]) for (_q, _t, o, _s), r in names.items() if o == "unanswered")
    out.update({
        "proto": dict(sorted(proto.items(), key=lambda kv: -kv[1][1])),
        "flows": [[p, a, b, c[0], c[1]] for (p, a, b), c in
                  sorted(flows.items(), key=lambda kv: -kv[1][1])[:top]],
        "flow_count": flow_count,
        "rates": rates,
        "tcp": {**tcp_tot, "dest": dict(sorted(dests.items(), key=lambda kv: -kv[1]["syn"]))},
        "dns": {**dns_tot, "unanswered": unanswered_dns, "rcodes": rcodes,
                "names": [[q, t, o, s, int(r[0]), round(r[1] / r[3], 3) if r[3] else None, round(r[2], 3)]
                          for (q, t, o, s), r in sorted(names.items(), key=lambda kv: -kv[1][0])],
                "latency_ms": _percentiles(latencies)},
        "tls": {"hellos": [[s, v, c] for (s, v), c in sorted(hellos.items(), key=lambda kv: -kv[1])],
                "alerts": [[d, lv, side, c] for (d, lv, side), c in sorted(alerts.items(), key=lambda kv: -kv[1])],
                "encrypted_alerts": encrypted_alerts},
        "http": [[h, code, c] for (h, code), c in sorted(http.items(), key=lambda kv: (kv[0][0], kv[0][1]))],
        "samples": samples[-MAX_PACKET_SAMPLES:],
    })
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "max": None}

    def pick(pct: float) -> float:
        return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * pct / 100))]

    return {"count": len(ordered), "p50": pick(50), "p95": pick(95), "max": ordered[-1]}


def summarise_stream(chunks: Iterable[bytes], summary: CaptureSummary) -> PcapStream:
    """Feed byte chunks through a PcapStream into ``summary``; returns the stream (for its error)."""
    stream = PcapStream()
    for chunk in chunks:
        summary.add_packets(stream.feed(chunk))
        if stream.error is not None:
            break
    stream.close()
    return stream
