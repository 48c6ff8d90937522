"""The flight recorder: compressed, flushed every second, capped and rotated, and never fatal when the disk is."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engine.recorder import FLUSH_S, Recorder, RecordingError, header
from console.engine.recording import TORN, read_recording
from probes.samples import SCHEMA_VERSION, Sample
from tests.recording.helpers import conns_table, pools_sample
from tests.unit.test_cli import warroom


def stream(start: float, seconds: int, sockets: int = 200) -> list[Sample]:
    """What a console records in ``seconds``: two targets, system and pools each second, a socket table every 5 s
    (the recorder keeps one in 5 s: see test_socket_tables_are_recorded_every_5_s)."""
    out: list[Sample] = []
    for tick in range(seconds):
        ts = start + tick
        out.append(Sample("tcp", "127.0.0.1:5432", ts, {"rtt_ms": 0.1 + tick % 5 / 10}))
        out.append(Sample("tcp", "127.0.0.1:9", ts, {}, error="refused", message="Connect call failed"))
        out.append(Sample("system", "", ts, {"cpu_percent": 10.0 + tick % 3, "mem_percent": 40.0}))
        if tick % 5 == 0:
            out.append(conns_table(ts, sockets, tick))
        out.append(pools_sample(ts, tick))
    return out


def record(target: Path, samples: list[Sample], **options: object) -> Recorder:
    recorder = Recorder(target, **options)  # type: ignore[arg-type]
    for sample in samples:
        recorder(sample)
    recorder.close()
    return recorder


@pytest.mark.parametrize("name, magic", [("", b"\x28\xb5\x2f\xfd"), ("rec.jsonl.gz", b"\x1f\x8b"),
                                         ("rec.jsonl", b'{"rec'), ("rec.zst", b"\x28\xb5\x2f\xfd")])
def test_recording_reads_back_exactly_in_each_format(tmp_path: Path, name: str, magic: bytes) -> None:
    samples = stream(time.time() - 100, 30)
    target = tmp_path / name if name else tmp_path
    recorder = record(target, samples)
    assert recorder.error is None and recorder.written == len(samples)
    first = recorder.segments[0]
    assert first.read_bytes().startswith(magic)
    got, problems = read_recording(target)
    assert problems.total == 0
    assert [s.to_json() for s in got] == [s.to_json() for s in samples]


def test_snapshots_cost_far_less_than_their_json(tmp_path: Path) -> None:
    """A 2,000-socket table every second, as the conns probe sends it: a small fraction of its JSON on disk."""
    start = time.time() - 100
    samples = [conns_table(start + i, 2000, i) for i in range(30)] + [pools_sample(start + i, i) for i in range(30)]
    recorder = record(tmp_path, samples)
    on_disk = sum(p.stat().st_size for p in recorder.segments)
    as_json = sum(len(s.to_json()) + 1 for s in samples)
    assert on_disk < as_json / 50, (on_disk, as_json)


def test_socket_tables_are_recorded_every_5_s(tmp_path: Path) -> None:
    start = time.time() - 100
    tables = [conns_table(start + i, 300, i) for i in range(23)]
    recorder = record(tmp_path, tables)
    got, problems = read_recording(tmp_path)
    assert problems.total == 0
    assert [round(s.ts - start) for s in got] == [0, 5, 10, 15, 20]
    assert [s.to_json() for s in got] == [tables[i].to_json() for i in (0, 5, 10, 15, 20)]
    assert recorder.thinned == 18 and recorder.written == 5


def test_each_second_is_on_disk_while_recording(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)
    try:
        now = time.time()
        for i in range(5):
            recorder(Sample("tcp", "127.0.0.1:1", now + i, {"rtt_ms": 1.0}))
        time.sleep(FLUSH_S + 0.5)
        got, problems = read_recording(tmp_path)  # the recorder still has the file open
        assert len(got) == 5 and problems.total == 0
    finally:
        recorder.close()


def test_rotation_keeps_the_recording_under_its_cap_and_drops_the_oldest(tmp_path: Path) -> None:
    cap = 256 * 1024
    samples = stream(time.time() - 2000, 600, sockets=400)
    recorder = record(tmp_path, samples, max_bytes=cap)
    files = sorted(tmp_path.iterdir())
    total = sum(p.stat().st_size for p in files)
    assert total <= cap * 1.1, (total, cap)
    assert len(files) >= 2 and files[0].name != "recording-000001.jsonl.zst"  # the oldest went
    assert [p.name for p in files] == [p.name for p in recorder.segments]
    got, problems = read_recording(tmp_path)
    assert problems.total == 0  # every kept segment starts with full snapshots
    assert got[-1].to_json() == samples[-1].to_json()
    assert got[0].ts > samples[0].ts
    kept = {s.to_json() for s in samples}
    assert all(s.to_json() in kept for s in got)


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    samples = stream(time.time() - 100, 5)
    record(rec, samples)
    data = rec.read_bytes()
    rec.write_bytes(data[: len(data) - 40])  # the writer died in the middle of the last line
    got, problems = read_recording(rec)
    assert problems.counts == {TORN: 1}
    assert [s.to_json() for s in got] == [s.to_json() for s in samples[:-1]]
    assert "1 torn last line" in (problems.summary(rec) or "")


@pytest.mark.parametrize("name", ["", "rec.jsonl.gz"])
def test_a_truncated_compressed_recording_replays_what_it_holds(tmp_path: Path, name: str) -> None:
    target = tmp_path / name if name else tmp_path / "dir"
    target.mkdir(exist_ok=True) if not name else None
    samples = stream(time.time() - 100, 40)
    recorder = record(target, samples)
    segment = recorder.segments[0]
    data = segment.read_bytes()
    expected = [s.to_json() for s in samples]
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7, 20):
        segment.write_bytes(data[:cut])
        got, problems = read_recording(target)
        lines = [s.to_json() for s in got]
        assert lines == expected[: len(lines)]  # a prefix, never a misread
        assert problems.total <= 2
    segment.write_bytes(data)


def test_a_recording_from_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    import json

    rec = tmp_path / "new.jsonl"
    newer = header(1, time.time()) | {"schema": SCHEMA_VERSION + 1, "warroom": "9.0"}
    rec.write_text(json.dumps(newer) + "\n" + Sample("tcp", "x:1", time.time(), {"rtt_ms": 1}).to_json() + "\n")
    with pytest.raises(RecordingError, match=f"schema {SCHEMA_VERSION + 1}.*replay it with a newer warroom"):
        read_recording(rec)
    before = rec.read_bytes()
    result = warroom("replay", str(rec), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "newer warroom" in result.stderr and "Traceback" not in result.stderr
    assert rec.read_bytes() == before


@pytest.mark.parametrize("where", ["fifo", "/dev/null", "dir"])
def test_record_onto_something_not_a_file_is_one_line_exit_2(tmp_path: Path, where: str) -> None:
    if where == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif where == "dir":
        path = tmp_path
    else:
        path = Path(where)
    result = warroom("--json", "--duration", "1", "--record", str(path), timeout=20)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a regular file" in lines[0] and "Traceback" not in result.stderr


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.system
def test_a_full_disk_stops_the_recorder_once_and_leaves_a_replayable_file(tmp_path: Path) -> None:
    messages: list[str] = []
    with small_tmpfs(tmp_path / "small", "128k") as disk:
        target = disk / "rec.jsonl.zst"
        recorder = Recorder(target, on_error=messages.append)
        samples = stream(time.time() - 1000, 400, sockets=300)
        for sample in samples:
            recorder(sample)  # never raises, full disk or not
        recorder.close()
        assert recorder.error is not None and "No space left on device" in recorder.error
        assert messages == [recorder.error]
        assert recorder.dropped > 0
        got, _ = read_recording(target)
        assert got, "the part written before the disk filled replays"
        expected = [s.to_json() for s in samples]
        assert [s.to_json() for s in got] == expected[: len(got)]


@pytest.mark.system
def test_full_disk_under_json_keeps_the_stream_going_with_one_line(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", "64k") as disk:
        (disk / "filler").write_bytes(b"\0" * (56 * 1024))  # leave a few KB: the first seconds fill it
        target = disk / "rec.jsonl"
        result = warroom("--json", "--duration", "4", "--interval", "0.2", "--record", str(target), "127.0.0.1:9",
                         timeout=40)
        assert result.returncode == 0, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "recording stopped" in lines[0] and "No space left on device" in lines[0]
        assert "Traceback" not in result.stderr
        streamed = result.stdout.splitlines()
        got, _ = read_recording(target)
        assert 0 < len(got) < len(streamed)
        # The stream went on after the recorder stopped: its last Samples are well past the recording's.
        import json

        assert json.loads(streamed[-1])["ts"] - got[-1].ts > 1.0
        replay = warroom("replay", str(target), "--json")
        assert replay.returncode == 0 and "Traceback" not in replay.stderr


def test_a_recording_deleted_under_the_recorder_goes_on_in_a_new_segment(tmp_path: Path) -> None:
    messages: list[str] = []
    recorder = Recorder(tmp_path, on_error=messages.append)
    try:
        now = time.time()
        recorder(Sample("tcp", "127.0.0.1:1", now, {"rtt_ms": 1.0}))
        time.sleep(0.3)
        recorder.segments[0].unlink()
        time.sleep(FLUSH_S + 0.5)
        recorder(Sample("tcp", "127.0.0.1:1", now + 1, {"rtt_ms": 2.0}))
    finally:
        recorder.close()
    assert len(messages) == 1 and "was deleted" in messages[0] and recorder.error is None
    got, problems = read_recording(tmp_path)
    assert [s.fields["rtt_ms"] for s in got] == [2.0] and problems.total == 0


def test_every_run_records_into_a_folder_of_its_own_unless_told_not_to(tmp_path: Path) -> None:
    incidents = Path(os.environ["XDG_DATA_HOME"]) / "warroom" / "incidents"
    first = warroom("--json", "--duration", "1", "127.0.0.1:9")
    second = warroom("--json", "--duration", "1", "127.0.0.1:9")
    assert first.returncode == 0 and second.returncode == 0
    folders = sorted(incidents.iterdir())
    assert len(folders) == 2  # one per run, named by its start time
    assert all((f / "recording-000001.jsonl.zst").stat().st_size > 0 for f in folders)
    got, problems = read_recording(folders[0])
    assert problems.total == 0 and {s.kind for s in got} >= {"tcp", "system"}

    assert warroom("--json", "--duration", "1", "--no-record").returncode == 0
    config = tmp_path / "config.toml"
    config.write_text("record = false\n")
    assert warroom("--json", "--duration", "1", "--config", str(config)).returncode == 0
    assert len(list(incidents.iterdir())) == 2
    both = warroom("--json", "--duration", "1", "--no-record", "--record", str(tmp_path / "x.jsonl"))
    assert both.returncode == 2 and "contradict" in both.stderr


def test_a_run_after_a_crash_starts_a_new_segment_and_both_replay(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl.zst"
    first = stream(time.time() - 300, 20)
    record(rec, first)
    rec.write_bytes(rec.read_bytes()[:-9])  # the first run was killed mid-frame
    second = stream(time.time() - 100, 10)
    recorder = record(rec, second)
    assert [p.name for p in recorder.segments] == ["rec.jsonl.zst.2"]
    got, problems = read_recording(rec)
    lines = [s.to_json() for s in got]
    assert lines[-len(second):] == [s.to_json() for s in second]  # all of the second run
    before = lines[:-len(second)]
    assert before == [s.to_json() for s in first][: len(before)]  # what the torn first segment still holds
    assert problems.total <= 1


def test_a_plain_file_is_appended_to_after_its_torn_line(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    first = stream(time.time() - 300, 5)
    record(rec, first)
    rec.write_bytes(rec.read_bytes()[:-30])
    second = stream(time.time() - 100, 5)
    record(rec, second)
    got, problems = read_recording(rec)
    assert [s.to_json() for s in got] == [s.to_json() for s in first[:-1] + second]
    assert problems.total == 1
