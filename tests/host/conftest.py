"""Real servers for the host-pane tests: PostgreSQL, Redis, a /metrics page, leaky TCP servers.

Everything listens on 127.0.0.1 only and is stopped when its fixture ends,
even after a failing test. The Debian packages come from scripts/apt.d/host.txt.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PG_PASSWORD = "pg-Secret-4711"
REDIS_PASSWORD = "redis-Secret-0815"
PG_MAX_CONNECTIONS = 20
REDIS_MAXCLIENTS = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin: "
                           "install the postgresql package (scripts/apt.d/host.txt)")
    return found[-1]


@dataclass(frozen=True)
class PgServer:
    port: int
    user: str = "app"
    dbname: str = "postgres"

    @property
    def dsn(self) -> str:
        """Without the password: tests hand it over through the environment, as users should."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def dsn_with_password(self) -> str:
        return f"postgresql://{self.user}:{PG_PASSWORD}@127.0.0.1:{self.port}/{self.dbname}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL cluster on a loopback port, password auth over TCP."""
    root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
    data, sockdir = base / "data", base / "sock"
    sockdir.mkdir()
    prefix: list[str] = []
    if root:
        # PostgreSQL refuses to run as root: run it as the package's postgres user.
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sockdir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    pwfile = base / "pw"
    pwfile.write_text("bootstrap\n")
    if root:
        shutil.chown(pwfile, "postgres", "postgres")
    port = free_port()
    subprocess.run([*prefix, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                    "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    options = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c max_connections={PG_MAX_CONNECTIONS} "
               "-c superuser_reserved_connections=2 -c fsync=off -c shared_buffers=16MB")
    subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w",
                    "-t", "30", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*prefix, _pg_bin("psql"), "-h", str(sockdir), "-p", str(port), "-U", "postgres", "-d",
                        "postgres", "-v", "ON_ERROR_STOP=1", "-c",
                        f"CREATE ROLE app LOGIN PASSWORD '{PG_PASSWORD}'; GRANT pg_read_all_stats TO app;"],
                       check=True, capture_output=True)
        yield PgServer(port=port)
    finally:
        subprocess.run([*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """redis-server on a loopback port with a password, no persistence, a small maxclients."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: install the redis-server package (scripts/apt.d/host.txt)")
    base = Path(tempfile.mkdtemp(prefix="warroom-redis-"))
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(base), "--save", "",
                             "--appendonly", "no", "--maxclients", str(REDIS_MAXCLIENTS), "--requirepass",
                             REDIS_PASSWORD, "--protected-mode", "yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield RedisServer(port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


class MetricsPage:
    """What the /metrics server serves; tests change ``text`` while it runs."""

    def __init__(self) -> None:
        self.text = ""
        self.content_type = "text/plain; version=0.0.4"


@dataclass
class MetricsServer:
    port: int
    page: MetricsPage

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


@pytest.fixture
def metrics_server() -> Iterator[MetricsServer]:
    page = MetricsPage()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.text.encode()
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield MetricsServer(port=server.server_address[1], page=page)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
