"""SVG snapshot of the capture pane at 80x24 over a fixed capture file (no clock, no live probe).

Update after an intended change with: python3 -m pytest tests/capture/test_capture_snapshot.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from console.commands.capture import file_samples, pane_app


def incident_file(path: Path) -> None:
    """Refused and dropped handshakes, an NXDOMAIN and an unanswered query, a TLS alert: fixed times."""
    c, s = IP(src="127.83.9.1", dst="127.83.9.2"), IP(src="127.83.9.2", dst="127.83.9.1")
    frames = []
    for i in range(3):
        frames += [Ether() / c / TCP(sport=41000 + i, dport=5432, flags="S"),
                   Ether() / s / TCP(sport=5432, dport=41000 + i, flags="RA")]
        frames += [Ether() / c / TCP(sport=42000 + i, dport=6379, flags="S")]
    frames += [Ether() / c / UDP(sport=5000, dport=53) / DNS(id=7, qd=DNSQR(qname="db.internal")),
               Ether() / s / UDP(sport=53, dport=5000) / DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="db.internal")),
               Ether() / c / UDP(sport=5001, dport=53) / DNS(id=8, qd=DNSQR(qname="cache.internal"))]
    frames += [Ether() / c / TCP(sport=43000, dport=443, flags="S", seq=0),
               Ether() / s / TCP(sport=443, dport=43000, flags="SA", seq=0, ack=1),
               Ether() / s / TCP(sport=443, dport=43000, flags="PA", seq=1, ack=1) / b"\x15\x03\x03\x00\x02\x02\x46"]
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i * 0.25
    wrpcap(str(path), frames)


def test_capture_pane_80x24(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "incident.pcap"
    incident_file(path)
    samples, _ = file_samples(str(path), target="incident.pcap")

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause(0.6)

    assert snap_compare(pane_app("incident.pcap", samples), terminal_size=(80, 24), run_before=settle)
