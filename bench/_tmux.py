"""Run a program in a detached tmux session and read its screen, as a user would see it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.tmux_server import stop_tmux_server

#: Private tmux servers, so other tmux users on the machine cannot disturb a run.
SOCKET_PREFIX = f"warroom-bench-{os.getpid()}"


class TmuxSession:
    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.name = f"bench-{uuid.uuid4().hex[:8]}"
        # One server per session: a shared one exits with its last session, and a session started
        # just then fails with "server exited unexpectedly".
        self.socket = f"{SOCKET_PREFIX}-{self.name}"
        self.started = time.perf_counter()
        subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", self.name,
                        "-x", str(width), "-y", str(height), command], check=True)

    def screen(self) -> str:
        args = ["tmux", "-L", self.socket, "capture-pane", "-p", "-t", self.name]
        return subprocess.run(args, capture_output=True, text=True).stdout

    def wait_for(self, marker: str, timeout: float = 20.0) -> float:
        """Seconds from session start until ``marker`` is on screen."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if marker in self.screen():
                return time.perf_counter() - self.started
            time.sleep(0.005)
        raise TimeoutError(f"{marker!r} not on screen after {timeout} s")

    def pane_pid(self) -> int:
        args = ["tmux", "-L", self.socket, "display", "-p", "-t", self.name, "#{pane_pid}"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    def close(self) -> None:
        stop_tmux_server(self.socket)
