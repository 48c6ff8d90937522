"""The hand-written ICMP echo packet: checksum and layout (no network)."""

from __future__ import annotations

import struct

from probes.icmp import checksum, echo_request


def test_checksum_matches_rfc1071_example() -> None:
    # RFC 1071 section 3's example words sum to 0xddf2; the checksum is its complement.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_of_packet_with_its_checksum_is_zero() -> None:
    packet = echo_request(0x1234, 7, b"abcde")  # odd length: padded for the sum only
    assert checksum(packet) == 0
    assert len(packet) == 8 + 5


def test_echo_request_layout() -> None:
    kind, code, _sum, ident, seq = struct.unpack("!BBHHH", echo_request(0x1_0042, 0x1_0003, b"")[:8])
    assert (kind, code, ident, seq) == (8, 0, 0x42, 3)  # ids and sequence numbers wrap at 16 bits
    v6 = echo_request(1, 2, b"x", v6=True)
    assert v6[0] == 128 and v6[2:4] == b"\0\0"  # ICMPv6: the kernel fills the checksum in
