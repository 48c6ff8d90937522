"""The pcap stream parser and the header-path summariser on crafted packets (no screen, no network)."""

from __future__ import annotations

import io
import os
import ssl
import struct
import subprocess
import tempfile

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether
from scapy.utils import PcapNgWriter, PcapWriter, rdpcap

from probes.dissect import ScapyDissector
from probes.pcapstream import CaptureSummary, PcapStream, merge, summarise_stream

CLIENT, SERVER = "127.83.9.1", "127.83.9.2"


def frames_tcp_conversation() -> list:
    """A connection with one retransmission, a keep-alive, a zero window and a server-side reset,
    and a second connection (seen mid-stream) that the client resets."""
    c, s = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    e = Ether()
    cp, sp = 40000, 8080
    return [
        e / c / TCP(sport=cp, dport=sp, flags="S", seq=1000),
        e / s / TCP(sport=sp, dport=cp, flags="SA", seq=5000, ack=1001),
        e / c / TCP(sport=cp, dport=sp, flags="A", seq=1001, ack=5001),
        e / c / TCP(sport=cp, dport=sp, flags="PA", seq=1001, ack=5001) / (b"x" * 100),
        e / c / TCP(sport=cp, dport=sp, flags="PA", seq=1001, ack=5001) / (b"x" * 100),  # retransmission
        e / c / TCP(sport=cp, dport=sp, flags="PA", seq=1101, ack=5001) / (b"y" * 50),
        e / c / TCP(sport=cp, dport=sp, flags="A", seq=1150, ack=5001) / b"k",  # keep-alive probe
        e / s / TCP(sport=sp, dport=cp, flags="A", seq=5001, ack=1151, window=0),  # zero window
        e / s / TCP(sport=sp, dport=cp, flags="R", seq=5001),  # reset from the server side
        # a connection whose handshake was before the capture: the client (high port) resets it
        e / c / TCP(sport=41000, dport=5432, flags="PA", seq=7, ack=9) / b"q",
        e / c / TCP(sport=41000, dport=5432, flags="R", seq=8),
    ]


def pcap_bytes(frames: list, *, nano: bool = False, linktype: int | None = None) -> bytes:
    buf = io.BytesIO()
    writer = PcapWriter(buf, nano=nano, linktype=linktype, sync=True)
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i * 0.001
        writer.write(frame)
    writer.flush()
    return buf.getvalue()


def pcapng_bytes(frames: list) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.pcapng")
        writer = PcapNgWriter(path)
        for i, frame in enumerate(frames):
            frame.time = 1_700_000_000 + i * 0.001
            writer.write(frame)
        writer.close()
        with open(path, "rb") as fh:
            return fh.read()


def summarise(data: bytes, chunk: int | None = None, **kwargs) -> tuple[dict, PcapStream]:
    summary = CaptureSummary(dissector=ScapyDissector(), dissect_budget=None, **kwargs)
    chunks = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    stream = summarise_stream(chunks, summary)
    return merge([summary.snapshot(final=True)]), stream


def test_tcp_conversation_counts_retransmissions_zero_windows_and_reset_sides() -> None:
    result, stream = summarise(pcap_bytes(frames_tcp_conversation()))
    assert stream.error is None and stream.packets == 11
    dest = result["tcp"]["dest"][f"{SERVER}:8080"]
    assert {k: dest[k] for k in ("syn", "synack", "refused", "unanswered", "retrans", "zero_window",
                                 "rst_server", "rst_client")} == {
        "syn": 1, "synack": 1, "refused": 0, "unanswered": 0, "retrans": 1, "zero_window": 1,
        "rst_server": 1, "rst_client": 0}
    assert result["tcp"]["dest"][f"{SERVER}:5432"]["rst_client"] == 1
    assert result["tcp"]["retrans"] == 1 and result["tcp"]["zero_window"] == 1 and result["tcp"]["rst"] == 2
    assert result["tcp"]["data_segments"] == 5  # 100, 100 (again), 50, the keep-alive byte, "q"


def test_pcapng_and_nanosecond_pcap_give_the_same_summary() -> None:
    frames = frames_tcp_conversation()
    plain, _ = summarise(pcap_bytes(frames))
    nano, _ = summarise(pcap_bytes(frames, nano=True))
    ng, stream = summarise(pcapng_bytes(frames))
    assert stream.format == "pcapng" and stream.packets == len(frames)
    for other in (nano, ng):
        assert other["tcp"] == plain["tcp"]
        assert other["flows"] == plain["flows"]
        assert other["packets"] == plain["packets"] and other["bytes"] == plain["bytes"]
    assert abs(ng["duration"] - 0.010) < 1e-6  # pcapng timestamps decoded at their resolution


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_any_chunking_of_the_stream_gives_the_same_counts(chunk: int) -> None:
    data = pcapng_bytes(frames_tcp_conversation()) + b""
    whole, _ = summarise(pcap_bytes(frames_tcp_conversation()))
    pieces, stream = summarise(pcap_bytes(frames_tcp_conversation()), chunk=chunk)
    assert stream.error is None
    assert pieces["tcp"] == whole["tcp"] and pieces["packets"] == whole["packets"]
    ng_pieces, ng_stream = summarise(data, chunk=chunk)
    assert ng_stream.error is None and ng_pieces["tcp"] == whole["tcp"]


def test_link_types_vlan_cooked_and_raw_ip_and_ipv6() -> None:
    syn4 = IP(src=CLIENT, dst=SERVER) / TCP(sport=40001, dport=443, flags="S")
    syn6 = IPv6(src="::1", dst="::1") / TCP(sport=40002, dport=443, flags="S")
    rst6 = IPv6(src="::1", dst="::1") / TCP(sport=443, dport=40002, flags="RA")
    vlan, _ = summarise(pcap_bytes([Ether() / Dot1Q(vlan=7) / syn4]))
    cooked, _ = summarise(pcap_bytes([CookedLinux(proto=0x0800) / syn4]))
    raw, _ = summarise(pcap_bytes([syn4], linktype=101))
    six, _ = summarise(pcap_bytes([Ether() / syn6, Ether() / rst6]))
    for result in (vlan, cooked, raw):
        assert result["tcp"]["dest"][f"{SERVER}:443"]["syn"] == 1
    assert six["tcp"]["dest"]["[::1]:443"]["refused"] == 1


def test_dns_matching_and_unanswered_at_end_of_file() -> None:
    c, s = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    frames = [
        Ether() / c / UDP(sport=5000, dport=53) / DNS(id=1, qd=DNSQR(qname="a.test")),
        Ether() / s / UDP(sport=53, dport=5000) / DNS(id=1, qr=1, rcode=3, qd=DNSQR(qname="a.test")),
        Ether() / c / UDP(sport=5001, dport=53) / DNS(id=2, qd=DNSQR(qname="b.test", qtype="AAAA")),
        Ether() / c / UDP(sport=5001, dport=53) / DNS(id=2, qd=DNSQR(qname="b.test", qtype="AAAA")),  # retry
        Ether() / s / ICMP(type=3, code=3),
    ]
    result, _ = summarise(pcap_bytes(frames))
    dns = result["dns"]
    assert (dns["queries"], dns["responses"], dns["retries"], dns["unanswered"]) == (2, 1, 1, 1)
    names = {(q, t, o): (c, avg) for q, t, o, _s, c, avg, _m in dns["names"]}
    assert names[("a.test.", "A", "NXDOMAIN")] == (1, 1.0)  # 1 ms between query and answer
    assert names[("b.test.", "AAAA", "unanswered")] == (1, None)
    assert result["proto"]["icmp"][0] == 1


def test_header_ring_keeps_headers_only_and_tcpdump_reads_the_export(tmp_path) -> None:
    summary = CaptureSummary(ring_size=4)
    summarise_stream([pcap_bytes(frames_tcp_conversation())], summary)
    out = tmp_path / "ring.pcap"
    assert summary.export_ring(str(out)) == 4
    packets = rdpcap(str(out))
    assert len(packets) == 4
    assert [bytes(p[TCP].payload) for p in packets] == [b""] * 4
    # the last four: zero-window ACK, server RST, the 1-byte "q" segment, client RST
    assert (len(packets[2]), packets[2].wirelen) == (54, 55)  # "q" was not kept, its length was
    listed = subprocess.run(["tcpdump", "-n", "-r", str(out)], capture_output=True, text=True, check=True)
    assert len(listed.stdout.splitlines()) == 4 and "Flags [R]" in listed.stdout


def test_corrupt_record_stops_reading_but_keeps_what_came_before() -> None:
    data = pcap_bytes(frames_tcp_conversation())
    cut = 24 + 16 + 54 + 16 + 54  # after two records
    broken = data[:cut] + struct.pack("<IIII", 0, 0, 10_000_000, 10_000_000) + data[cut + 16:]
    result, stream = summarise(broken)
    assert stream.packets == 2 and result["packets"] == 2
    assert stream.error is not None and "captured length 10000000" in stream.error
    assert stream.error_offset == cut


def test_truncated_stream_reports_where_it_stopped() -> None:
    data = pcap_bytes(frames_tcp_conversation())
    result, stream = summarise(data[:-10])
    assert stream.packets == 10 and result["packets"] == 10
    assert stream.error is not None and stream.error.startswith("truncated")


def test_merge_adds_snapshots_exactly() -> None:
    frames = frames_tcp_conversation()
    summary = CaptureSummary()
    stream = PcapStream()
    snaps = []
    for packet in stream.feed(pcap_bytes(frames)):
        summary.add_packets([packet])
        snaps.append(summary.snapshot(now=packet[0]))
    snaps.append(summary.snapshot(final=True))
    merged = merge(snaps)
    whole, _ = summarise(pcap_bytes(frames))
    assert merged["packets"] == whole["packets"] and merged["bytes"] == whole["bytes"]
    for key in ("syn", "synack", "retrans", "zero_window", "rst_server", "rst_client"):
        assert merged["tcp"]["dest"][f"{SERVER}:8080"][key] == whole["tcp"]["dest"][f"{SERVER}:8080"][key]


def client_hello(maximum: ssl.TLSVersion | None = None) -> bytes:
    """The first flight of a real OpenSSL client, taken from a memory BIO (no network)."""
    ctx = ssl.create_default_context()
    if maximum is not None:
        ctx.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="api.test")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_client_hello_sni_and_version_also_when_the_snap_length_cut_it() -> None:
    d = ScapyDissector()
    hello13, hello12 = client_hello(), client_hello(ssl.TLSVersion.TLSv1_2)
    assert d.tls_client_hello(hello13) == ("api.test", "TLS 1.3")
    assert d.tls_client_hello(hello12) == ("api.test", "TLS 1.2")
    after_sni = hello13.index(b"api.test") + len(b"api.test")
    sni, version = d.tls_client_hello(hello13[:after_sni + 2]) or ("", "")
    assert sni == "api.test" and version in ("TLS 1.3", "TLS 1.2?")  # "?": cut before supported_versions
    assert d.tls_client_hello(hello13[:after_sni - 3]) == ("api.t…", "TLS 1.2?")  # the name itself was cut


def test_a_port_scan_and_a_name_flood_keep_one_snapshot_small() -> None:
    c, s = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    frames = []
    for port in range(1, 301):  # 300 closed ports: 300 destinations
        frames += [Ether() / c / TCP(sport=40000, dport=port, flags="S"),
                   Ether() / s / TCP(sport=port, dport=40000, flags="RA")]
    frames += [Ether() / c / UDP(sport=5000 + i, dport=53) / DNS(id=i, qd=DNSQR(qname=f"x{i}.test"))
               for i in range(300)]
    result, _ = summarise(pcap_bytes(frames))
    dests = result["tcp"]["dest"]
    assert len(dests) == 50 and "(251 others)" in dests
    assert sum(d["syn"] for d in dests.values()) == 300 and sum(d["refused"] for d in dests.values()) == 300
    names = result["dns"]["names"]
    assert len(names) == 50 and sum(row[4] for row in names) == 300  # every unanswered query still counted
    assert names[0][:5] == ["(others)", "", "unanswered", "", 251]


def test_a_reused_four_tuple_starts_new_sequences_on_both_sides() -> None:
    c, s = IP(src=CLIENT, dst=SERVER), IP(src=SERVER, dst=CLIENT)
    frames = []
    for client_isn, server_isn in ((1000, 5000), (900_000, 3_000_000_000)):  # the second far "behind" the first
        frames += [Ether() / c / TCP(sport=40000, dport=80, flags="S", seq=client_isn),
                   Ether() / s / TCP(sport=80, dport=40000, flags="SA", seq=server_isn, ack=client_isn + 1),
                   Ether() / c / TCP(sport=40000, dport=80, flags="PA", seq=client_isn + 1) / b"GET",
                   Ether() / s / TCP(sport=80, dport=40000, flags="PA", seq=server_isn + 1) / b"200",
                   Ether() / c / TCP(sport=40000, dport=80, flags="FA", seq=client_isn + 4),
                   Ether() / s / TCP(sport=80, dport=40000, flags="FA", seq=server_isn + 4)]
    result, _ = summarise(pcap_bytes(frames))
    assert result["tcp"]["retrans"] == 0
    assert result["tcp"]["dest"][f"{SERVER}:80"]["synack"] == 2
