"""Pytest fixtures that start the misbehaving servers of servers.py and always stop them.

Factories take a bind address so the same servers can run on any 127.0.0.x
address here, or inside a network namespace when the lab's netns fixtures
provide one. Import these fixtures into a test area's conftest.py with
``from tests.lab.server_fixtures import *``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests.lab.servers import (
    DNSBehaviour,
    FakeDNSServer,
    MisbehavingHTTPServer,
    StallServer,
    TLSCertLab,
)

__all__ = ["cert_lab", "dns_server", "http_server", "loopback_only", "stall_server", "tls_server"]


class NonLoopbackTraffic(PermissionError):
    """A test tried to reach an address outside 127.0.0.0/8 and ::1."""


def _check_address(address: object) -> None:
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        try:
            ip = ipaddress.ip_address(address[0].split("%", 1)[0])
        except ValueError:
            raise NonLoopbackTraffic(f"test tried to reach {address[0]!r} by name: use an address") from None
        if not ip.is_loopback:
            raise NonLoopbackTraffic(f"test tried to reach {address[0]}: only loopback is allowed")


class _Startable(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=_Startable)


def _started(make: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """Yield a factory that builds a server with ``make`` and starts it; stop every one it started."""
    started: list[S] = []

    def start(*args: Any, **kwargs: Any) -> S:
        server = make(*args, **kwargs)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any in-process connect/sendto to a non-loopback address (the house network rule, enforced).

    Subprocesses are not covered; tests that start the CLI pass loopback
    targets and --no-system-resolvers themselves.
    """
    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto

    def connect(self: socket.socket, address: object) -> None:
        _check_address(address)
        return real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        _check_address(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        _check_address(args[-1] if args else None)
        return real_sendto(self, data, *args)  # type: ignore[arg-type,call-overload]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)


@pytest.fixture(scope="session")
def cert_lab(tmp_path_factory: pytest.TempPathFactory) -> TLSCertLab:
    """One test CA (root + intermediate) for the session; ``cert_lab.ca_file`` is the trust store."""
    return TLSCertLab(Path(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def http_server() -> Iterator[Callable[..., MisbehavingHTTPServer]]:
    """Factory: ``http_server(host="127.0.0.1")`` -> a started plain-HTTP MisbehavingHTTPServer."""

    def make(host: str = "127.0.0.1", port: int = 0) -> MisbehavingHTTPServer:
        return MisbehavingHTTPServer(host, port)

    yield from _started(make)


@pytest.fixture
def tls_server(cert_lab: TLSCertLab) -> Iterator[Callable[..., MisbehavingHTTPServer]]:
    """Factory: ``tls_server("expired", host=...)`` -> a started HTTPS server with that certificate fault."""

    def make(fault: str = "good", host: str = "127.0.0.1", port: int = 0) -> MisbehavingHTTPServer:
        return MisbehavingHTTPServer(host, port, tls=cert_lab.context(fault))

    yield from _started(make)


@pytest.fixture
def dns_server() -> Iterator[Callable[..., FakeDNSServer]]:
    """Factory: ``dns_server({"api.test": DNSBehaviour(addresses=[...])}, host=...)`` -> a started FakeDNSServer."""

    def make(names: dict[str, DNSBehaviour] | None = None, host: str = "127.0.0.1", port: int = 0,
             default: DNSBehaviour | None = None) -> FakeDNSServer:
        return FakeDNSServer(host, port, names=names, default=default)

    yield from _started(make)


@pytest.fixture
def stall_server() -> Iterator[Callable[..., StallServer]]:
    """Factory: ``stall_server(host=...)`` -> a started server that accepts and never speaks."""

    def make(host: str = "127.0.0.1", port: int = 0) -> StallServer:
        return StallServer(host, port)

    yield from _started(make)
