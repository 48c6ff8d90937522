"""`warroom capture FILE` as a user runs it: a subprocess, text and JSON, damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, wrpcap

ROOT = Path(__file__).resolve().parents[2]


def warroom(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "console", "capture", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def refused_handshakes(n: int) -> list:
    frames = []
    for i in range(n):
        syn = Ether() / IP(src="127.83.8.1", dst="127.83.8.2") / TCP(sport=40000 + i, dport=6379, flags="S")
        rst = Ether() / IP(src="127.83.8.2", dst="127.83.8.1") / TCP(sport=6379, dport=40000 + i, flags="RA")
        syn.time, rst.time = 1_700_000_000 + i, 1_700_000_000 + i + 0.0005
        frames += [syn, rst]
    return frames


def test_text_summary_of_a_pcap(tmp_path: Path) -> None:
    path = tmp_path / "refused.pcap"
    wrpcap(str(path), refused_handshakes(4))
    result = warroom(str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"{path}: pcap, link-type 1, 8 packets" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("127.83.8.2:6379"))
    assert row.split() == ["127.83.8.2:6379", "4", "0", "4", "0", "0", "0/0", "0", "0"]


def test_json_summary_of_a_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "refused.pcapng"
    writer = PcapNgWriter(str(path))
    for frame in refused_handshakes(3):
        writer.write(frame)
    writer.close()
    result = warroom(str(path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["file"]["format"] == "pcapng" and summary["file"]["error"] is None
    assert summary["packets"] == 6
    dest = summary["tcp"]["dest"]["127.83.8.2:6379"]
    assert (dest["syn"], dest["refused"], dest["synack"]) == (3, 3, 0)


def test_truncated_file_summarises_what_was_readable_and_says_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), refused_handshakes(4))
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # the last RST is cut off
    result = warroom(str(path), "--json")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warroom: {path}: truncated at byte {len(data) - 16 - 54}")
    assert "summarised the 7 packets before it" in lines[0]
    summary = json.loads(result.stdout)
    assert summary["packets"] == 7
    assert summary["tcp"]["dest"]["127.83.8.2:6379"]["refused"] == 3


def test_corrupt_middle_of_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pcap"
    wrpcap(str(path), refused_handshakes(2))
    data = bytearray(path.read_bytes())
    second = 24 + 16 + 54
    data[second + 8:second + 12] = (0x7FFFFFFF).to_bytes(4, "little")  # absurd captured length
    path.write_bytes(bytes(data))
    result = warroom(str(path))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"corrupt record at byte {second}" in result.stderr
    assert "1 packets" in result.stdout.splitlines()[0]


def test_nothing_readable_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    not_pcap = tmp_path / "notes.txt"
    not_pcap.write_text("hello, this is not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    header_cut = tmp_path / "header.pcap"
    header_cut.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")
    for path, words in ((not_pcap, "not a pcap or pcapng file"), (empty, "empty"),
                        (header_cut, "truncated"), (tmp_path / "missing.pcap", "No such file")):
        result = warroom(str(path))
        assert result.returncode == 2, path
        assert result.stdout == ""
        assert result.stderr.startswith(f"warroom: {path}: ") and words in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_arguments_exit_2_without_traceback() -> None:
    result = warroom()
    assert result.returncode == 2 and result.stderr.startswith("warroom: capture:")
    assert "Traceback" not in result.stderr


def test_export_headers_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.pcap"
    frames = refused_handshakes(2)
    frames[0] = frames[0] / (b"secret-payload" * 4)
    wrpcap(str(source), frames)
    out = tmp_path / "headers.pcap"
    result = warroom(str(source), "--export-headers", str(out))
    assert result.returncode == 0, result.stderr
    exported = out.read_bytes()
    assert b"secret-payload" not in exported
    listed = subprocess.run(["tcpdump", "-n", "-r", str(out)], capture_output=True, text=True, check=True)
    assert len(listed.stdout.splitlines()) == 4


def spread_handshakes(n: int) -> list:
    """Refused handshakes, one every 0.5 s: a file that spans several seconds."""
    frames = refused_handshakes(n)
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + (i // 2) * 0.5 + (i % 2) * 0.0005
    return frames


def test_file_samples_replay_the_file_second_by_second(tmp_path: Path) -> None:
    from console.commands.capture import file_samples, summarise_file
    from probes.pcapstream import merge
    from probes.samples import Sample

    path = tmp_path / "spread.pcap"
    wrpcap(str(path), spread_handshakes(6))  # 0.0 .. 2.5 s
    samples, stream = file_samples(str(path))
    assert stream.error is None
    assert all(Sample.from_json(s.to_json()) == s for s in samples)  # what the recorder and agent carry
    assert [s.fields["packets"] for s in samples] == [4, 4, 4]
    assert [round(s.ts - 1_700_000_000, 4) for s in samples] == [1.0, 2.0, 2.5005]
    whole, _, _ = summarise_file(str(path))
    assert merge([s.fields for s in samples])["tcp"] == whole["tcp"]


async def test_the_pane_shows_a_file(tmp_path: Path) -> None:
    from textual.content import Content
    from textual.widgets import Static

    from console.commands.capture import file_samples, pane_app

    path = tmp_path / "spread.pcap"
    wrpcap(str(path), spread_handshakes(6))
    samples, _ = file_samples(str(path))
    app = pane_app(str(path), samples)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        body = Content.from_markup(str(app.query_one("#capture-summary", Static).content)).plain
        row = next(line for line in body.splitlines() if "127.83.8.2:6379" in line)
        assert row.split()[2:6] == ["6", "0", "6", "0"]  # the whole file: window "all"
        await pilot.press("w")  # -> 10 s: still the whole file, it spans 2.5 s of capture time
        await pilot.pause()
        body = Content.from_markup(str(app.query_one("#capture-summary", Static).content)).plain
        assert next(line for line in body.splitlines() if "127.83.8.2:6379" in line).split()[2] == "6"
        await pilot.press("q")
