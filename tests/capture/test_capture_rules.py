"""Diagnosis rules over capture samples: findings from crafted packets and from the probe's errors."""

from __future__ import annotations

import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from console.diagnosis import capture as rules_capture
from console.diagnosis.registry import RULES, Finding, diagnose
from console.engine.store import Store
from probes.pcapstream import CaptureSummary, PcapStream
from probes.samples import Sample, error_sample

CAPTURE_RULES = {name: RULES[name] for name in RULES if name.startswith("capture_")}


def capture_sample(frames: list, health: dict | None = None) -> Sample:
    import io

    from scapy.utils import PcapWriter

    buf = io.BytesIO()
    writer = PcapWriter(buf, sync=True)
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i * 0.001
        writer.write(frame)
    summary = CaptureSummary()
    summary.add_packets(PcapStream().feed(buf.getvalue()))
    fields = summary.snapshot(final=True)
    fields["health"] = health or {"interface": "eth0", "dropped_kernel": 0, "seen": len(frames)}
    return Sample(kind="capture", target="eth0", ts=time.time(), fields=fields)


def findings(*samples: Sample) -> list[Finding]:
    store = Store()
    for sample in samples:
        store.add(sample)
    return diagnose(store, CAPTURE_RULES)


def test_rules_module_registers_its_rules() -> None:
    assert set(CAPTURE_RULES) == {"capture_syn_unanswered", "capture_connections_refused", "capture_server_resets",
                                  "capture_retransmissions", "capture_zero_windows", "capture_dns_failures",
                                  "capture_tls_alerts", "capture_health"}
    assert rules_capture.LAYER == "capture"


def test_retransmissions_zero_windows_and_server_resets() -> None:
    c, s = IP(src="127.83.9.1", dst="127.83.9.2"), IP(src="127.83.9.2", dst="127.83.9.1")
    frames = []
    for conn in range(3):
        cp = 41000 + conn
        frames += [Ether() / c / TCP(sport=cp, dport=8080, flags="S", seq=0),
                   Ether() / s / TCP(sport=8080, dport=cp, flags="SA", seq=0, ack=1)]
        for _ in range(5):  # the same segment five times: four retransmissions
            frames.append(Ether() / c / TCP(sport=cp, dport=8080, flags="PA", seq=1, ack=1) / (b"d" * 10))
        frames += [Ether() / s / TCP(sport=8080, dport=cp, flags="A", seq=1, ack=11, window=0)] * 2
        frames.append(Ether() / s / TCP(sport=8080, dport=cp, flags="R", seq=1))
    found = {f.rule: f for f in findings(capture_sample(frames))}
    assert found["capture_retransmissions"].title == "80.0% of TCP data segments are retransmitted"
    assert found["capture_retransmissions"].severity == "critical"
    assert "12 of 15 data segments" in found["capture_retransmissions"].evidence[0]
    assert "127.83.9.2:8080" in found["capture_zero_windows"].title
    assert found["capture_server_resets"].title == "the server side of 127.83.9.2:8080 resets connections (3 RSTs)"
    assert "capture_syn_unanswered" not in found and "capture_connections_refused" not in found


def test_a_healthy_capture_has_no_findings() -> None:
    c, s = IP(src="127.83.9.1", dst="127.83.9.2"), IP(src="127.83.9.2", dst="127.83.9.1")
    frames = [Ether() / c / TCP(sport=41000, dport=80, flags="S"), Ether() / s / TCP(sport=80, dport=41000, flags="SA")]
    assert findings(capture_sample(frames)) == []


def test_capture_health_kernel_drops_and_no_privilege() -> None:
    dropped = capture_sample([], {"interface": "eth0", "dropped_kernel": 42, "seen": 1000})
    found = findings(dropped)
    assert [f.rule for f in found] == ["capture_health"]
    assert "dropped 42 packets" in found[0].title
    denied = error_sample("capture", "any", "permission", "packet capture needs CAP_NET_RAW ...; run one of: sudo "
                          "setcap cap_net_raw,cap_net_admin=eip /usr/bin/tcpdump")
    found = findings(denied)
    assert [f.rule for f in found] == ["capture_health"]
    assert "setcap" in found[0].next_step and found[0].title == "packet capture is not running: permission"
