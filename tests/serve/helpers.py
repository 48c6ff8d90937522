"""Real parts for the serve tests: a responder's console in tmux, `warroom serve`, loopback TCP servers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.tmux_server import stop_tmux_server

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    """``check()``'s first truthy value within ``timeout`` seconds, else AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g} s")


@contextlib.contextmanager
def listening_server() -> Iterator[int]:
    """A loopback TCP server that accepts and closes: a healthy target. Yields its port."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


class Tmux:
    """A console run as a responder runs it: in a terminal (a private tmux server), keys sent as typed."""

    def __init__(self, command: str, env: dict[str, str], width: int = 120, height: int = 40) -> None:
        self.socket = f"warroom-serve-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "r", "-x", str(width),
                        "-y", str(height), f"cd {ROOT} && env {exports} {command}"], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "r"], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "r", *keys], check=True)

    def close(self) -> None:
        stop_tmux_server(self.socket)


def console_command(*args: str) -> str:
    return " ".join([sys.executable, "-m", "console.cli", *args])


@contextlib.contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`warroom serve` on a free loopback port until the block ends; yields (port, process)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "console.cli", "serve", "--port", str(port), *args], cwd=ROOT,
                               env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        def accepting() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(lambda: accepting() or process.poll() is not None, 20, "warroom serve listening")
        assert process.poll() is None, process.communicate()
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
