"""A user's machine in a temporary directory: HOME, the XDG folders, and warroom run as the user runs it
(``python3 -m console.cli`` in a subprocess, or on a real terminal in tmux on a private socket)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from console.engine.recorder import Recorder
from probes.samples import Sample
from tests.tmux_server import stop_tmux_server
from tests.unit.test_cli import ROOT


@dataclass
class UserEnv:
    """HOME and XDG_DATA_HOME / XDG_CONFIG_HOME under ``root``; nothing of the real user's is read or written."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config_home(self) -> Path:
        return self.root / "config"

    @property
    def incidents(self) -> Path:
        return self.data / "warroom" / "incidents"

    @property
    def config_file(self) -> Path:
        """The default config file (read when it exists)."""
        return self.config_home / "warroom" / "config.toml"

    def env(self) -> dict[str, str]:
        for path in (self.home, self.data, self.config_home):
            path.mkdir(parents=True, exist_ok=True)
        drop = ("COLORTERM", "NO_COLOR", "TMUX", "XDG_RUNTIME_DIR", "COLUMNS", "LINES")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(HOME=str(self.home), XDG_DATA_HOME=str(self.data), XDG_CONFIG_HOME=str(self.config_home),
                   PYTHONPATH=str(ROOT))
        return env

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=self.env(),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def command_line(self, *args: str) -> str:
        """A shell command running warroom as this user (for tmux)."""
        env = self.env()
        names = ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "PYTHONPATH")
        assigns = " ".join(f"{n}={shlex.quote(env[n])}" for n in names)
        return (f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES {assigns} TERM=xterm-256color "
                f"{shlex.quote(sys.executable)} -m console.cli {' '.join(shlex.quote(a) for a in args)}")

    def run_folders(self) -> list[Path]:
        return sorted(p for p in self.incidents.iterdir() if p.is_dir()) if self.incidents.is_dir() else []


def automatic_recording(env: UserEnv, name: str, *, age_days: float, samples: int = 50,
                        extra: dict[str, str] | None = None) -> Path:
    """An automatic recording as a run leaves it (the real recorder, plain JSON lines so its size is known),
    last written ``age_days`` ago; ``extra`` files are put beside it (a person's notes)."""
    folder = env.incidents / name
    folder.mkdir(parents=True)
    start = time.time() - age_days * 86400 - samples
    recorder = Recorder(folder, compression="plain")
    for i in range(samples):
        recorder(Sample("tcp", "127.0.0.1:9", start + i, {"rtt_ms": 0.1, "pad": "x" * 200}))
    recorder.close()
    for file_name, text in (extra or {}).items():
        (folder / file_name).write_text(text)
    set_age(folder, age_days)
    return folder


def set_age(folder: Path, age_days: float) -> None:
    when = time.time() - age_days * 86400
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (when, when))


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


@dataclass
class Tmux:
    """A real terminal: tmux on a socket of its own (never the default server), one session."""

    width: int = 120
    height: int = 40
    socket: str = field(default_factory=lambda: f"warroom-rec-{uuid.uuid4().hex[:8]}")

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, check=check, timeout=20)

    def start(self, command: str) -> None:
        self._tmux("new-session", "-d", "-s", "w", "-x", str(self.width), "-y", str(self.height), command)

    def screen(self) -> str:
        result = self._tmux("capture-pane", "-p", "-t", "w", check=False)
        return result.stdout

    def wait_for(self, *words: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(w in screen for w in words):
                return screen
            time.sleep(0.25)
        raise AssertionError(f"{words} not on the screen after {timeout} s:\n{screen}")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "w", *keys)

    def running(self) -> bool:
        return self._tmux("has-session", "-t", "w", check=False).returncode == 0

    def wait_exit(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return
            time.sleep(0.2)
        raise AssertionError(f"the console did not quit within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        stop_tmux_server(self.socket)
