"""A replay shows the console as it was: its targets, the demo's labels, its SSH hosts, from the recording's headers.

The headers never carry a secret; a state that changes mid-run (the demo's servers up, a target added) is a
header line again, and the snapshot changes after it still decode.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zstandard

from console.engine.recorder import Recorder, console_state
from console.engine.recording import is_header, read_recording
from console.engine.replay import Recording, watched
from tests.recording.helpers import conns_table
from tests.recording.test_recorder import stream
from tests.recording.user_env import Tmux, UserEnv


def headers(folder: Path) -> list[dict[str, object]]:
    """Every header line of a zstandard recording folder, as written."""
    out = []
    for segment in sorted(folder.glob("recording-*.jsonl.zst")):
        reader = zstandard.ZstdDecompressor().stream_reader(segment.read_bytes(), read_across_frames=True)
        for line in reader.read().splitlines():
            value = json.loads(line)
            if is_header(value):
                out.append(value)
    return out


def test_state_changes_mid_run_are_header_lines_and_every_snapshot_still_decodes(tmp_path: Path) -> None:
    first = console_state(targets=["127.0.0.1:5432"], hostname="db-client", remote_hosts=["prod-db-1"])
    later = console_state(targets=["127.0.0.1:5432", "127.0.0.1:6379"], labels={"127.0.0.1:6379": "cache"},
                          hostname="db-client", remote_hosts=["prod-db-1"])
    samples = stream(time.time() - 200, 40)
    recorder = Recorder(tmp_path, console=first, max_bytes=400 * 1024)
    for i, sample in enumerate(samples):
        recorder(sample)
        if i == len(samples) // 2:
            recorder.set_console(later)
            recorder.set_console(later)  # the same again: no line
    recorder.close()
    said = [h["console"] for h in headers(tmp_path)]
    assert said[0] == first and said.count(later) >= 1 and said.index(later) > 0
    assert len([h for h in headers(tmp_path) if h["segment"] == 1]) == 2  # the segment's own and the change
    got, problems = read_recording(tmp_path)
    assert problems.total == 0  # the deltas after the change line found their (full) snapshot
    assert [s.to_json() for s in got] == [s.to_json() for s in samples if s.kind != "conns_table"
                                         or round(s.ts - samples[0].ts) % 5 == 0]
    state = watched(Recording.load(tmp_path))
    assert state.targets[:2] == ["127.0.0.1:5432", "127.0.0.1:6379"] and state.labels == {"127.0.0.1:6379": "cache"}
    assert state.remote_hosts == ["prod-db-1"] and state.hostname == "db-client" and not state.demo


def test_every_socket_table_of_a_plain_recording_rebuilds(tmp_path: Path) -> None:
    """`--record FILE` without .zst/.gz: a full snapshot in the middle of a read is found at its own
    offset. It was found at the start of the read, so the socket tables after the second full one
    could not be rebuilt: replay showed no socket table near the end."""
    samples = stream(time.time() - 200, 100)
    path = tmp_path / "run.jsonl"
    recorder = Recorder(path)
    for sample in samples:
        recorder(sample)
    recorder.close()
    recording = Recording.load(path)
    (track,) = recording.tracks.values()
    assert sum(ref.full for ref in track.refs) >= 3  # key frames past the first
    tables = [s for s in samples if s.kind == "conns_table"]
    rebuilt = [track.get(i) for i in range(len(track.refs))]
    assert [s.to_json() if s else None for s in rebuilt] == [s.to_json() for s in tables]
    assert recording.problems.total == 0
    # As `replay --at end` asks: the last table first, from its own key frame.
    assert Recording.load(path).tracks[track.key].get(len(track.refs) - 1) is not None


def test_a_header_from_a_file_cannot_flood_the_replay(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    head = {"recording": "warroom", "schema": 1, "segment": 1, "started": time.time(),
            "console": {"targets": [f"127.0.0.1:{i}" for i in range(1, 5000)] + [7, None, "x" * 900],
                        "labels": {"127.0.0.1:1": ["not", "text"], "127.0.0.1:2": "ok"},
                        "remote_hosts": "not a list", "demo": "yes", "hostname": 42}}
    rec.write_text(json.dumps(head) + "\n" + conns_table(time.time() - 10, 3, 0).to_json() + "\n")
    state = watched(Recording.load(rec))
    assert len(state.targets) == 1000 and all(isinstance(t, str) and len(t) < 900 for t in state.targets)
    assert state.labels == {"127.0.0.1:2": "ok"} and state.remote_hosts == [] and state.demo is False
    assert state.hostname == ""


def test_no_secret_reaches_a_recording_header(tmp_path: Path) -> None:
    user = UserEnv(tmp_path / "user")
    user.config_file.parent.mkdir(parents=True)
    user.config_file.write_text('secrets = ["tenant-4711-key"]\n')
    target = "http://ops:S3cretPassw0rd@127.0.0.1:9/tenant-4711-key/health"
    result = user.run("--json", "--duration", "1", target)
    assert result.returncode == 0, result.stderr
    (folder,) = user.run_folders()
    (head,) = headers(folder)[:1]
    assert head["console"]["targets"] == ["http://***@127.0.0.1:9/***/health"]  # type: ignore[index]
    raw = b"".join(zstandard.ZstdDecompressor().stream_reader(p.read_bytes(), read_across_frames=True).read()
                   for p in folder.glob("recording-*"))
    assert b"S3cretPassw0rd" not in raw and b"tenant-4711-key" not in raw.split(b"\n", 1)[0]


@pytest.fixture
def tmux() -> object:
    terminal = Tmux(width=200, height=40)
    yield terminal
    terminal.close()


def test_replay_of_a_demo_run_shows_its_labels(tmp_path: Path, tmux: Tmux) -> None:
    user = UserEnv(tmp_path / "user")
    tmux.start(user.command_line("demo"))
    tmux.wait_for("nothing listens", timeout=40)
    time.sleep(3)  # a few probes of each demo server
    tmux.keys("q")
    tmux.wait_exit()
    (folder,) = user.run_folders()
    state = watched(Recording.load(folder))
    assert state.demo and len(state.targets) == 5 and len(state.labels) == 5

    replay = Tmux(width=200, height=40)
    try:
        replay.start(user.command_line("replay", str(folder), "--at", "end", "--paused"))
        screen = replay.wait_for("REPLAY of", "(a demo run)", "refused: nothing listens", "slow: HTTP answering",
                                 timeout=40)
        assert "stall: accepts, then never answers" in screen
        replay.keys("q")
        replay.wait_exit()
    finally:
        replay.close()


def test_replay_shows_the_ssh_hosts_of_the_run(tmp_path: Path, tmux: Tmux) -> None:
    """The Hosts tab of a replay has the run's host (its status line and its system pane); the host is an
    ssh_config alias of a loopback port nothing listens on, so no name is looked up and nothing leaves."""
    user = UserEnv(tmp_path / "user")
    env = user.env()
    with socket_closed() as port:
        ssh_config = user.home / "ssh_config"
        ssh_config.write_text(f"Host prod-db-1\n  HostName 127.0.0.1\n  Port {port}\n  User ops\n")
        result = user.run("--host", "prod-db-1", "--ssh-config", str(ssh_config), "--json", "--duration", "3",
                          "127.0.0.1:9")
    assert result.returncode in (0, 1), result.stderr
    assert env["HOME"] == str(user.home)
    (folder,) = user.run_folders()
    assert headers(folder)[0]["console"]["remote_hosts"] == ["prod-db-1"]  # type: ignore[index]
    tmux.start(user.command_line("replay", str(folder), "--at", "end", "--paused"))
    tmux.wait_for("REPLAY of", timeout=40)
    tmux.keys("7")
    screen = tmux.wait_for("System (prod-db-1)", "prod-db-1", timeout=20)
    assert "reconnecting" in screen or "waiting" in screen
    tmux.keys("q")
    tmux.wait_exit()


class socket_closed:
    """A loopback port nothing listens on (bound, then closed), for the length of the with-block."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None
