"""Fuzzing the parser: random and truncated frames and pcap streams never make an exception escape."""

from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.dissect import ScapyDissector
from probes.pcapstream import CaptureSummary, PcapStream, merge, summarise_stream

LINKTYPES = st.sampled_from([0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147])
#: WARROOM_FUZZ_EXAMPLES=5000 for a longer run than the suite's.
FUZZ = settings(max_examples=int(os.environ.get("WARROOM_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def ipv4_tcp_udp(proto: int, payload: bytes, ihl_words: int, total: int, tcp_off: int) -> bytes:
    """An Ethernet frame whose header fields are fuzzed but whose layout is plausible."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl_words, 0, total, 1, 0, 64, proto, 0,
                     bytes([127, 83, 7, 1]), bytes([127, 83, 7, 2]))
    l4 = struct.pack("!HHIIBBHHH", 1234, 53, 1, 0, tcp_off << 4, 0x12, 0, 0, 0) if proto == 6 \
        else struct.pack("!HHHH", 1234, 53, 8 + len(payload), 0)
    return b"\xff" * 12 + b"\x08\x00" + ip + l4 + payload


@FUZZ
@given(lt=LINKTYPES, frame=st.binary(max_size=200), wirelen=st.integers(0, 70000))
def test_random_frames_never_raise_and_never_trip_the_parser(lt: int, frame: bytes, wirelen: int) -> None:
    summary = CaptureSummary(dissector=ScapyDissector(), dissect_budget=None, sample_every=1)
    summary.add(1.0, lt, wirelen, frame)
    merge([summary.snapshot(final=True)])
    assert summary.parse_errors == 0  # bounds are checked, not caught


@FUZZ
@given(proto=st.sampled_from([6, 17]), payload=st.binary(max_size=120), ihl=st.integers(0, 15),
       total=st.integers(0, 0xFFFF), tcp_off=st.integers(0, 15), cut=st.integers(0, 250),
       prefix=st.sampled_from([b"", b"\x16\x03\x01\x00\x40\x01", b"\x15\x03\x03\x00\x02", b"HTTP/1.1 ",
                               b"GET / HTTP/1.1\r\nHost: ", b"\x00\x01\x01\x00\x00\x01"]))
def test_truncated_and_malformed_headers_never_raise(proto: int, payload: bytes, ihl: int, total: int,
                                                     tcp_off: int, cut: int, prefix: bytes) -> None:
    frame = ipv4_tcp_udp(proto, prefix + payload, ihl, total, tcp_off)[:cut]
    summary = CaptureSummary(dissector=ScapyDissector(), dissect_budget=None, sample_every=1)
    for ts in (1.0, 1.5):  # twice: the second meets the state the first left behind
        summary.add(ts, 1, len(frame) + 10, frame)
    merge([summary.snapshot(final=True)])
    assert summary.parse_errors == 0


records = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=80)), max_size=12)


def pcap_stream(magic: bytes, linktype: int, recs: list[tuple[int, bytes]]) -> bytes:
    endian = "<" if magic == b"\xd4\xc3\xb2\xa1" else ">"
    out = magic + struct.pack(endian + "HHiIII", 2, 4, 0, 0, 65535, linktype)
    for ts, data in recs:
        out += struct.pack(endian + "IIII", ts, 0, len(data), len(data)) + data
    return out


@FUZZ
@given(magic=st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"]), lt=LINKTYPES, recs=records,
       cut=st.integers(0, 2000), chunk=st.integers(1, 300))
def test_pcap_streams_truncated_anywhere_and_chunked_anyhow(magic: bytes, lt: int, recs: list, cut: int,
                                                            chunk: int) -> None:
    full = pcap_stream(magic, lt, recs)
    data = full[:cut]
    stream = PcapStream()
    got = []
    for i in range(0, len(data), chunk):
        got.extend(stream.feed(data[i:i + chunk]))
    stream.close()
    whole = PcapStream().feed(data)
    assert [p[3] for p in got] == [p[3] for p in whole]  # chunking changes nothing
    boundaries = [24]
    for _ts, rec in recs:
        boundaries.append(boundaries[-1] + 16 + len(rec))
    if min(cut, len(full)) in boundaries:  # ends between records: a complete, shorter capture
        assert stream.error is None and len(got) == boundaries.index(min(cut, len(full)))
    else:
        assert stream.error is not None  # cut inside a record or the header: said so
    assert [p[3] for p in got] == [r[1] for r in recs][:len(got)]  # what came before is kept


@FUZZ
@given(data=st.binary(max_size=600), chunk=st.integers(1, 64))
def test_random_bytes_as_a_stream(data: bytes, chunk: int) -> None:
    summary = CaptureSummary(dissector=ScapyDissector(), dissect_budget=None)
    stream = summarise_stream((data[i:i + chunk] for i in range(0, len(data), chunk)), summary)
    assert stream.error is not None or stream.format is not None
    merge([summary.snapshot(final=True)])


@FUZZ
@given(body=st.binary(max_size=400), cut=st.integers(0, 500), chunk=st.integers(1, 128))
def test_pcapng_blocks_with_random_bodies(body: bytes, cut: int, chunk: int) -> None:
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20)
    pad = body + b"\x00" * (-len(body) % 4)
    epb = struct.pack("<IIIIIII", 6, 32 + len(pad), 0, 0, 0, len(body), len(body)) + pad \
        + struct.pack("<I", 32 + len(pad))
    junk = struct.pack("<II", 6, 12 + len(pad)) + pad + struct.pack("<I", 99)  # a block with a bad trailer
    blocks = [shb, idb, epb, epb, junk]
    data = b"".join(blocks)[:cut]
    summary = CaptureSummary(dissector=ScapyDissector(), dissect_budget=None)
    stream = summarise_stream((data[i:i + chunk] for i in range(0, len(data), chunk)), summary)
    ends = [sum(len(b) for b in blocks[:i]) for i in range(1, len(blocks))]  # block boundaries before junk
    if len(data) in ends:
        assert stream.error is None and stream.packets == max(0, ends.index(len(data)) - 1)
    else:
        assert stream.error is not None  # cut inside a block, or the bad trailer
        assert stream.packets <= 2
    merge([summary.snapshot(final=True)])


@FUZZ
@given(payload=st.binary(max_size=300))
def test_dissector_returns_none_rather_than_raising(payload: bytes) -> None:
    d = ScapyDissector()
    for result in (d.dns_question(payload), d.tls_client_hello(b"\x16\x03\x01" + payload),
                   d.http_host(b"GET / HTTP/1.1\r\n" + payload), d.summary(1, payload), d.summary(276, payload)):
        assert result is None or isinstance(result, (str, tuple))
