"""The capture source a remote host uses: a pcap byte stream from any reader, and the [capture] config."""

from __future__ import annotations

import asyncio
import time

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from probes.capture import CaptureOptions, spec_from_config, stream_from_reader
from probes.pcapstream import merge


def refused_pcap(path: str, n: int) -> None:
    frames = []
    for i in range(n):
        frames += [Ether() / IP(src="127.83.8.1", dst="127.83.8.2") / TCP(sport=40000 + i, dport=5432, flags="S"),
                   Ether() / IP(src="127.83.8.2", dst="127.83.8.1") / TCP(sport=5432, dport=40000 + i, flags="RA")]
    for i, frame in enumerate(frames):
        frame.time = time.time() + i * 0.001
    wrpcap(path, frames)


async def collect(path: str, cut: int | None = None) -> list:
    # `cat` stands in for `ssh host tcpdump -U -w -`: a process whose stdout is a pcap byte stream.
    proc = await asyncio.create_subprocess_exec("sh", "-c", f"cat {path}" + (f" | head -c {cut}" if cut else ""),
                                                stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    samples = [s async for s in stream_from_reader(proc.stdout.read, CaptureOptions(interval=0.2), "eth0@db1",
                                                   host="db1")]
    await proc.wait()
    return samples


async def test_a_byte_stream_from_another_process_is_summarised(tmp_path) -> None:
    path = str(tmp_path / "remote.pcap")
    refused_pcap(path, 5)
    samples = await collect(path)
    assert samples and all(s.host == "db1" and s.target == "eth0@db1" for s in samples)
    assert samples[-1].ok and samples[-1].fields["health"]["state"] == "ended"
    dest = merge([s.fields for s in samples])["tcp"]["dest"]["127.83.8.2:5432"]
    assert (dest["syn"], dest["refused"]) == (5, 5)


async def test_a_stream_cut_mid_record_ends_with_an_error_sample_keeping_the_counts(tmp_path) -> None:
    path = str(tmp_path / "remote.pcap")
    refused_pcap(path, 5)
    samples = await collect(path, cut=24 + 3 * (16 + 54) + 10)
    last = samples[-1]
    assert last.error == "tcpdump" and "truncated" in (last.message or "")
    assert merge([s.fields for s in samples])["packets"] == 3


def test_config_section_to_spec() -> None:
    spec = spec_from_config({"interface": "eth0", "filter": "port 5432", "snaplen": 256, "dns_ports": [53, 5300],
                             "handshake_timeout": 2})
    assert spec.kind == "capture" and spec.target == "eth0"
    assert spec.options == {"interface": "eth0", "filter": "port 5432", "snaplen": 256, "dns_ports": [53, 5300],
                            "handshake_timeout": 2}
    opts = CaptureOptions.from_spec(spec)
    assert opts.command("/usr/bin/tcpdump") == ["/usr/bin/tcpdump", "-i", "eth0", "-s", "256", "-B", "32768", "-n",
                                                "-U", "-w", "-", "--", "port 5432"]
    assert CaptureOptions.from_spec(spec_from_config({})).bpf.startswith("not port 22")
    for bad, words in (({"snaplen": "big"}, "snaplen: expected a whole number"), ({"colour": 1}, "unknown setting"),
                       ({"dns_ports": [0]}, "dns_ports"), ({"snaplen": True}, "got true/false")):
        with pytest.raises(ValueError, match=words):
            spec_from_config(bad)
