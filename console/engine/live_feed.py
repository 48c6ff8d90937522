"""The running console's live feed: what `warroom serve`'s viewers follow, over a Unix socket.

The console is the one place that probes. It serves its Sample stream on a
socket in the user's data directory (``live/console-PID.sock``, mode 0600, so
only this user's processes can follow it); each viewer connects, gets the
console's state (targets, labels, SSH hosts, where the incident's alias file
is), everything the store holds, then every new Sample as it is published and
a new state line whenever the responder adds or removes a target. Viewers
send nothing: the socket is read-only by construction.

Lines are JSON: a Sample (``Sample.to_json``), or a state line
``{"feed": "state", ...}``. A viewer that stops reading is dropped once
``MAX_BUFFER`` bytes wait for it (it reconnects and catches up), so a stalled
browser never costs the console memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.engine import paths
from console.engine.store import Store
from probes.samples import Sample, SampleDecodeError

FEED_VERSION = 1
#: Bytes queued for one viewer before it is dropped (a backlog of an hour of a busy console fits).
MAX_BUFFER = 64 * 1024 * 1024
KIND_STATE = "state"


class FeedError(OSError):
    """No console to follow, or a feed this version cannot read; the message says which and why."""


def feeds_dir() -> Path:
    """Where running consoles put their feed sockets."""
    return paths.data_dir() / "live"


def feed_path(pid: int | None = None) -> Path:
    return feeds_dir() / f"console-{os.getpid() if pid is None else pid}.sock"


def running_feeds() -> list[Path]:
    """Feed sockets of consoles that answer, newest first (a crashed console's socket is removed)."""
    found: list[tuple[float, Path]] = []
    for path in feeds_dir().glob("console-*.sock"):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(path))
        except ConnectionRefusedError:
            with contextlib.suppress(OSError):
                path.unlink()  # nobody listens: its console is gone
            continue
        except OSError:
            continue
        finally:
            probe.close()
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime, path))
    return [path for _, path in sorted(found, reverse=True)]


@dataclass
class _Viewer:
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None = None


@dataclass
class LiveFeed:
    """Serves ``store``'s Samples to viewers; add it to the hub's listeners (all on the console's loop)."""

    store: Store
    describe: Callable[[], dict[str, Any]]
    """The console's state for a state line (targets, labels, hosts, alias file)."""
    path: Path = field(default_factory=feed_path)
    viewers: list[_Viewer] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: no window in which another user could connect
        try:
            self._server = await asyncio.start_unix_server(self._accept, path=str(self.path))
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for viewer in list(self.viewers):
            self._drop(viewer)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def __call__(self, sample: Sample) -> None:
        """A hub listener: the Sample goes to every viewer."""
        if self.viewers:
            self._send((sample.to_json() + "\n").encode())

    def announce(self) -> None:
        """Tell every viewer the console's state changed (a target added or removed)."""
        if self.viewers:
            self._send(self._state_line())

    def _state_line(self) -> bytes:
        return (json.dumps({"feed": KIND_STATE, "version": FEED_VERSION, **self.describe()}) + "\n").encode()

    def _send(self, data: bytes) -> None:
        for viewer in list(self.viewers):
            transport = viewer.writer.transport
            if transport.is_closing() or transport.get_write_buffer_size() > MAX_BUFFER:
                self._drop(viewer)
                continue
            viewer.writer.write(data)

    def _drop(self, viewer: _Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        viewer.writer.close()
        if viewer.task is not None and viewer.task is not asyncio.current_task():
            viewer.task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # State, backlog and registration happen with no await between them, so the viewer's
        # stream has no gap and no repeat: every later Sample is written after the backlog.
        viewer = _Viewer(writer, asyncio.current_task())
        writer.write(self._state_line())
        backlog = sorted(self.store, key=lambda s: s.ts)
        writer.write("".join(s.to_json() + "\n" for s in backlog).encode())
        self.viewers.append(viewer)
        try:
            while await reader.read(4096):  # viewers send nothing; EOF means it went away
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if viewer in self.viewers:
                self._drop(viewer)


@dataclass(frozen=True)
class FeedState:
    """A state line: what the console watches, as the viewer should show it."""

    targets: list[str]
    labels: dict[str, str]
    hostname: str
    remote_hosts: list[str]
    aliases: str | None
    """The incident's alias file (viewers share the console's aliases)."""
    demo: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedState:
        if data.get("version") != FEED_VERSION:
            raise FeedError(f"the console speaks feed version {data.get('version')}, this viewer {FEED_VERSION}: "
                            "run the same warroom for both")
        return cls(targets=[str(t) for t in data.get("targets", [])],
                   labels={str(k): str(v) for k, v in dict(data.get("labels", {})).items()},
                   hostname=str(data.get("hostname", "")), remote_hosts=[str(h) for h in data.get("remote_hosts", [])],
                   aliases=data.get("aliases"), demo=bool(data.get("demo", False)))


async def follow(path: Path) -> AsyncIterator[FeedState | Sample]:
    """The feed at ``path``: its state lines and Samples, until the console goes away."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_BUFFER)
    except OSError as exc:
        raise FeedError(f"cannot follow the console at {path}: {exc.strerror or exc}") from None
    try:
        while line := await reader.readline():
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a torn line at a console's crash: skip it
            if isinstance(data, dict) and data.get("feed") == KIND_STATE:
                yield FeedState.from_dict(data)
                continue
            try:
                yield Sample.from_dict(data)
            except SampleDecodeError:
                continue
    finally:
        writer.close()
