"""Retention of the automatic recordings, as a user meets it: real folders, real runs of warroom, real locks.

Each test is a user's machine in a temporary directory (HOME, XDG_DATA_HOME, XDG_CONFIG_HOME); warroom runs
as ``python3 -m console.cli`` in a subprocess and probes only 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engine.recorder import LOCK_NAME, lock_holder
from console.engine.recording import read_recording
from console.incident.folder import IncidentFolder
from tests.recording.user_env import Tmux, UserEnv, automatic_recording, set_age, size_of
from tests.unit.test_cli import ROOT


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserEnv:
    env = UserEnv(tmp_path / "user")
    env.env()
    monkeypatch.setenv("XDG_DATA_HOME", str(env.data))  # in-process helpers write where the runs look
    return env


@pytest.fixture
def other_console(user: UserEnv) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process holding an old automatic folder's recording lock, as a console recording into it does."""
    folder = automatic_recording(user, "2020-01-01_09-00-00", age_days=400)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from console.engine.recorder import lock_folder; lock_folder(Path(sys.argv[1])); print('locked', "
         "flush=True); time.sleep(120)", str(folder)],
        cwd=ROOT, env=user.env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        set_age(folder, 400)  # the lock file was just written: the folder looks as old as it is again
        yield folder, holder
    finally:
        holder.kill()
        holder.wait()


def test_start_removes_what_retention_no_longer_keeps_and_says_so_in_one_line(
        user: UserEnv, other_console: tuple[Path, subprocess.Popen[str]]) -> None:
    locked, holder = other_console
    old = automatic_recording(user, "2021-03-04_10-00-00", age_days=45)
    recent = automatic_recording(user, "2021-05-01_10-00-00", age_days=3)
    notes = automatic_recording(user, "2021-03-05_10-00-00", age_days=60, extra={"notes.txt": "what I saw"})
    named = IncidentFolder.open("db-outage")
    named.start(["127.0.0.1:5432"], [])
    set_age(named.path, 500)
    freed = size_of(old)

    result = user.run("--json", "--duration", "1", "127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warroom: removed 1 automatic recording (")
    assert "1 older than 30 days" in lines[0] and "--incident folders are never removed" in lines[0]
    assert f"({freed / 1024:.1f} KB)" in lines[0]
    assert not old.exists()
    assert recent.exists() and notes.exists() and named.path.exists() and (named.path / "meta.json").exists()
    assert locked.exists() and lock_holder(locked) == holder.pid  # another console writes it: never removed
    new = [p for p in user.run_folders() if p not in (recent, notes, locked, named.path)]
    assert len(new) == 1  # this run's own folder, with its recording, unlocked now that the run ended
    samples, problems = read_recording(new[0])
    assert samples and problems.total == 0 and not (new[0] / LOCK_NAME).exists()

    again = user.run("--json", "--duration", "1", "--no-record", "127.0.0.1:9")
    assert again.returncode == 0 and again.stderr == ""  # nothing more to remove: nothing said


def test_the_console_prunes_once_its_screen_is_up_and_says_so_there_and_when_it_ends(user: UserEnv) -> None:
    """Retention runs beside the screen (weighing hundreds of past runs held the first frame back by tens
    of ms; test_screen_craft checks it has not run by then): its line shows on the screen, and is printed
    on the terminal once the console ends, as a headless run prints it when it starts."""
    old = automatic_recording(user, "2021-03-04_10-00-00", age_days=45)
    recent = automatic_recording(user, "2021-05-01_10-00-00", age_days=3)
    terminal = Tmux(width=160, height=40)
    try:
        terminal.start(user.command_line("--no-record", "127.0.0.1:9") + "; echo console-ended; sleep 60")
        screen = terminal.wait_for("Targets", "removed 1 automatic", timeout=40)
        assert "127.0.0.1:9" in screen
        assert not old.exists() and recent.exists()
        terminal.keys("q")
        after = terminal.wait_for("console-ended", timeout=30)
        ended = [line for line in after.splitlines() if line.startswith("warroom: removed")]
        assert len(ended) == 1 and ended[0].startswith("warroom: removed 1 automatic recording ("), after
    finally:
        terminal.close()


def test_the_size_limit_removes_the_oldest_first_and_the_list_says_so_beforehand(user: UserEnv) -> None:
    folders = [automatic_recording(user, f"2022-01-0{day}_08-00-00", age_days=10 - day, samples=400)
               for day in range(1, 5)]
    each = size_of(folders[0])
    keep_mb = (each * 2.5) / (1024 * 1024)  # room for two and a half: the two oldest must go

    listing = user.run("incidents", "--keep-mb", f"{keep_mb:.4f}")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.startswith("2022-")}
    assert set(rows) == {f.name for f in folders}
    for folder in folders[:2]:
        assert "would be removed: oldest while all take more than" in rows[folder.name]
    for folder in folders[2:]:
        assert rows[folder.name].rstrip().endswith("kept")
    assert all(f"{size_of(folder) / 1024:.1f} KB" in rows[folder.name] for folder in folders)
    assert "the next start removes 2" in listing.stdout
    assert all(f.exists() for f in folders)  # listing removes nothing

    pruned = user.run("incidents", "--prune", "--keep-mb", f"{keep_mb:.4f}")
    assert pruned.returncode == 0, pruned.stderr
    assert "removed 2 automatic recordings" in pruned.stdout and "2 to stay under" in pruned.stdout
    assert [f.exists() for f in folders] == [False, False, True, True]


def test_config_sets_retention_and_the_option_overrides_it(user: UserEnv) -> None:
    old = automatic_recording(user, "2023-02-01_08-00-00", age_days=5)
    user.config_file.parent.mkdir(parents=True, exist_ok=True)
    user.config_file.write_text("record_keep_days = 7\n")
    listing = user.run("incidents")
    assert listing.returncode == 0 and "kept 7 days" in listing.stdout and "[record_keep_days]" in listing.stdout
    assert "would be removed" not in listing.stdout

    user.config_file.write_text("record_keep_days = 2\n")
    kept = user.run("--json", "--duration", "1", "--no-record", "--keep-days", "0")  # 0: however old
    assert kept.returncode == 0 and kept.stderr == "" and old.exists()
    removed = user.run("--json", "--duration", "1", "--no-record")
    assert removed.returncode == 0 and not old.exists()
    assert "1 older than 2 days" in removed.stderr


@pytest.mark.parametrize("args, config, says", [
    (["--keep-days", "two-weeks"], None, "argument --keep-days: invalid float value: 'two-weeks'"),
    (["--keep-days", "-3"], None, "--keep-days must be a number of days from 0 (no limit)"),
    (["--keep-mb", "nan"], None, "--keep-mb must be a number of megabytes from 0 (no limit)"),
    ([], 'record_keep_days = "two weeks"\n', "'record_keep_days' has the wrong type (str)"),
    ([], "record_keep_mb = -1\n", "'record_keep_mb' must be a number of megabytes from 0 (no limit)"),
    ([], "record_keep_days = true\n", "'record_keep_days' has the wrong type (true/false)"),
    ([], "record_keep_days = inf\n", "is inf: give a finite number"),
])
def test_a_malformed_retention_value_is_one_line_and_exit_2(user: UserEnv, args: list[str], config: str | None,
                                                             says: str) -> None:
    old = automatic_recording(user, "2023-02-01_08-00-00", age_days=900)
    if config is not None:
        user.config_file.parent.mkdir(parents=True, exist_ok=True)
        user.config_file.write_text(config)
    for command in (["--json", "--duration", "1", *args], ["incidents", *args]):
        result = user.run(*command)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("warroom: ") and says in lines[0], result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
    assert old.exists()  # bad input removes nothing


def test_a_folder_of_a_console_that_crashed_is_free_again(user: UserEnv) -> None:
    """A recorder killed with SIGKILL leaves its lock file; its flock died with it, so retention may go on."""
    command = ("import sys, time; from pathlib import Path; from console.engine.recorder import Recorder; "
               "r = Recorder(Path(sys.argv[1])); print('recording', flush=True); time.sleep(120)")
    folder = user.incidents / "2019-06-01_12-00-00"
    folder.mkdir(parents=True)
    writer = subprocess.Popen([sys.executable, "-c", command, str(folder)], cwd=ROOT, env=user.env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "recording"
        assert lock_holder(folder) == writer.pid
        set_age(folder, 100)
        busy = user.run("incidents")
        assert f"recording now (pid {writer.pid})" in busy.stdout
    finally:
        writer.kill()
        writer.wait()
    assert (folder / LOCK_NAME).exists() and lock_holder(folder) is None
    set_age(folder, 100)
    listing = user.run("incidents")
    assert "would be removed: last written 100 days ago" in listing.stdout
    assert user.run("incidents", "--prune").returncode == 0 and not folder.exists()


def test_named_incidents_are_listed_with_sizes_and_never_removed(user: UserEnv) -> None:
    named = IncidentFolder.open("2024-01-01_10-00-00")  # named like an automatic one, but an incident
    named.start(["127.0.0.1:5432"], [])
    (named.path / "recording.jsonl").write_text("x" * 5000)
    set_age(named.path, 999)
    listing = user.run("incidents", "--keep-days", "1", "--keep-mb", "0.001")
    assert listing.returncode == 0
    incident_row = next(line for line in listing.stdout.splitlines() if line.startswith("2024-01-01_10-00-00"))
    assert "KB" in incident_row and "no automatic recordings" in listing.stdout
    assert "named incidents are never removed automatically" in listing.stdout
    user.run("incidents", "--prune", "--keep-days", "1", "--keep-mb", "0.001")
    assert (named.path / "meta.json").exists() and time.time() - named.path.stat().st_mtime > 900 * 86400
