"""`warroom demo`'s backends: small loopback servers that misbehave the way backends do.

Everything binds to 127.0.0.1 on ports the kernel picks, inside this process:
no root, no network, no configuration. Each server plays one incident:

- api:     HTTP that answers fast (the healthy baseline)
- slow:    HTTP that answers after 120 ms ± 40 ms (an overloaded backend)
- refused: a port nothing listens on (TCP RST: crashed service, wrong port)
- stall:   accepts and reads the request, then never answers (hung worker)
- backlog: listens but never accepts; once its backlog is full the kernel drops
           SYNs and connects time out (a server too busy to accept)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass, field

from probes.runtime import within

SLOW_MEAN_S = 0.120
SLOW_JITTER_S = 0.040
STALL_HOLD_S = 30.0
MAX_STALLED = 64


@dataclass
class DemoTarget:
    name: str
    target: str
    story: str


@dataclass
class DemoLab:
    """The running demo servers; ``targets`` is what the console probes."""

    targets: list[DemoTarget] = field(default_factory=list)
    _servers: list[asyncio.Server] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _stalled: set[asyncio.StreamWriter] = field(default_factory=set)

    @classmethod
    async def start(cls, host: str = "127.0.0.1") -> DemoLab:
        lab = cls()
        api = await lab._http_server(host, delay=lambda: 0.0)
        slow = await lab._http_server(
            host, delay=lambda: max(0.0, random.gauss(SLOW_MEAN_S, SLOW_JITTER_S)))
        stall = await asyncio.start_server(lab._stall, host, 0)
        lab._servers += [api, stall]
        refused_port = _unused_port(host)
        backlog_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        backlog_sock.bind((host, 0))
        backlog_sock.listen(0)  # never accepted: a full queue makes the kernel drop SYNs
        lab._sockets.append(backlog_sock)
        lab.targets = [
            DemoTarget("api", f"http://{host}:{_port(api)}/health", "healthy HTTP baseline"),
            DemoTarget("slow", f"http://{host}:{_port(slow)}/orders", "HTTP answering in 120 ± 40 ms"),
            DemoTarget("refused", f"{host}:{refused_port}", "nothing listens: connects are refused"),
            DemoTarget("stall", f"http://{host}:{_port(stall)}/report", "accepts, then never answers"),
            DemoTarget("backlog", f"{host}:{backlog_sock.getsockname()[1]}", "never accepts: SYNs dropped"),
        ]
        return lab

    async def _http_server(self, host: str, delay: object) -> asyncio.Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await within(reader.readuntil(b"\r\n\r\n"), 5)
                await asyncio.sleep(delay())  # type: ignore[operator]
                body = b'{"status":"ok"}\n'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                await writer.drain()
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError, OSError):
                pass
            except asyncio.CancelledError:
                # Shutting down. Ending normally, not cancelled: Python 3.11's start_server
                # callback calls task.exception() on a cancelled handler and logs a traceback.
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, host, 0)
        self._servers.append(server)
        return server

    async def _stall(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._stalled) >= MAX_STALLED:  # bounded: a stalled client holds a socket
            writer.close()
            return
        self._stalled.add(writer)
        try:
            # CancelledError too: see the note in _http_server's handler.
            with contextlib.suppress(asyncio.TimeoutError, OSError, asyncio.CancelledError):
                await within(reader.read(), STALL_HOLD_S)  # until the client gives up
        finally:
            self._stalled.discard(writer)
            writer.close()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._stalled):
            writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await within(server.wait_closed(), 1)
        for sock in self._sockets:
            sock.close()


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def _unused_port(host: str) -> int:
    """A port that was free a moment ago; connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
