"""Fixtures for the capture tests: real tcpdump on loopback, real servers, a real nftables rule.

Every test uses its own 127.83.5.x address and filters on it, so loopback
traffic from other tests (or other people on this machine) never reaches the
counts. Servers and firewall rules are removed even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
import trustme

from probes import capture
from probes.pcapstream import merge
from probes.samples import Sample

#: Loopback addresses of this area's tests (the whole 127/8 answers on lo).
ADDR_REFUSED = "127.83.5.1"
ADDR_DROPPED = "127.83.5.2"
ADDR_DNS = "127.83.5.3"
ADDR_DNS_SILENT = "127.83.5.4"
ADDR_TLS = "127.83.5.5"
ADDR_HTTP = "127.83.5.6"
ADDR_RING = "127.83.5.7"
DNS_PORT = 5300


@dataclass
class CaptureRun:
    samples: list[Sample]

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]

    @property
    def summary(self) -> dict[str, Any]:
        """What the pane shows over a window covering the whole run."""
        return merge([s.fields for s in self.ok])

    @property
    def health(self) -> dict[str, Any]:
        return self.samples[-1].fields.get("health", {})


async def run_capture(bpf: str, traffic: Callable[[], None], *, settle: float = 2.0, limit: float = 30.0,
                      before_stop: Callable[[], None] | None = None, interface: str = "lo",
                      **options: Any) -> CaptureRun:
    """Run the real capture probe on lo with ``bpf``, start ``traffic`` (in a thread) once tcpdump
    listens, and keep capturing ``settle`` seconds after it ends (libpcap hands packets over in blocks
    up to 1 s late, and the handshake/DNS time-outs below must pass); then call ``before_stop``."""
    options.setdefault("handshake_timeout", 0.5)
    options.setdefault("dns_timeout", 0.5)
    spec = capture.capture_spec(interface, bpf, **options)
    spec = type(spec)(kind=spec.kind, target=spec.target, interval=0.25, timeout=spec.timeout, options=spec.options)
    samples: list[Sample] = []
    traffic_task: asyncio.Future[None] | None = None
    done_at: float | None = None
    deadline = time.monotonic() + limit
    agen = capture.stream(spec)
    try:
        async for sample in agen:
            samples.append(sample)
            if not sample.ok or time.monotonic() > deadline:
                break
            if traffic_task is None and sample.fields["health"]["state"] == "listening":
                traffic_task = asyncio.ensure_future(asyncio.to_thread(traffic))
            elif traffic_task is not None and traffic_task.done():
                traffic_task.result()  # a failing traffic generator fails the test here
                if done_at is None:
                    done_at = time.monotonic()
                elif time.monotonic() - done_at >= settle:
                    if before_stop is not None:
                        before_stop()  # still capturing: the session is live
                    break
    finally:
        await agen.aclose()  # stops tcpdump
        if traffic_task is not None and not traffic_task.done():
            await traffic_task
    assert traffic_task is not None, f"tcpdump never listened: {[s.message for s in samples if s.message]}"
    return CaptureRun(samples)


@pytest.fixture
def tcpdump_path() -> str:
    path = shutil.which("tcpdump")
    assert path, "tcpdump is missing: scripts/install-test-deps.sh installs it (scripts/apt.d/capture.txt)"
    return path


@pytest.fixture
def nft_drop_syn() -> Iterator[Callable[[str, int], None]]:
    """Add an nftables rule dropping SYNs to ADDR:PORT on input (after tcpdump's tap); removed afterwards."""
    nft = shutil.which("nft")
    assert nft, "nft is missing: scripts/install-test-deps.sh installs nftables (scripts/apt.d/capture.txt)"
    table = f"warroom_capture_{os.getpid()}"
    created = False

    def add(addr: str, port: int) -> None:
        nonlocal created
        rules = (f"table inet {table} {{\n chain input {{\n  type filter hook input priority -5; policy accept;\n"
                 f"  ip daddr {addr} tcp dport {port} tcp flags syn drop\n }}\n}}\n")
        subprocess.run([nft, "-f", "-"], input=rules, text=True, check=True, capture_output=True)
        created = True

    try:
        yield add
    finally:
        if created:
            subprocess.run([nft, "delete", "table", "inet", table], check=False, capture_output=True)


@pytest.fixture
def dns_server() -> Iterator[tuple[str, int]]:
    """A tiny authoritative responder on ADDR_DNS:DNS_PORT (UDP) answering what the tests ask for:
    ok.test -> A 127.83.5.200, missing.test -> NXDOMAIN, broken.test -> SERVFAIL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ADDR_DNS, DNS_PORT))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            name = query.question[0].name.to_text()
            if name == "ok.test.":
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.83.5.200"))
            elif name == "broken.test.":
                reply.set_rcode(dns.rcode.SERVFAIL)
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.flags |= dns.flags.AA
            sock.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield ADDR_DNS, DNS_PORT
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def dns_query(server: tuple[str, int], name: str, timeout: float = 0.5) -> int | None:
    """Send one A query over UDP; the rcode, or None when no answer came."""
    query = dns.message.make_query(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query.to_wire(), server)
        try:
            data, _ = sock.recvfrom(4096)
        except (TimeoutError, ConnectionRefusedError):
            return None
        return dns.message.from_wire(data).rcode()


@pytest.fixture
def tls13_only_server() -> Iterator[tuple[str, int]]:
    """A TLS server on ADDR_TLS that accepts only TLS 1.3 (so a TLS 1.2 client gets a protocol_version alert)."""
    ca = trustme.CA()
    cert = ca.issue_cert("api.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    listener = socket.socket()
    listener.bind((ADDR_TLS, 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            with contextlib.suppress(OSError, ssl.SSLError), ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield ADDR_TLS, listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


class _StatusHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib names it so
        code = 200 if self.path == "/" else 404
        body = b"ok" if code == 200 else b"no such page"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib signature
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, int]]:
    """A plain HTTP/1.1 server on ADDR_HTTP: 200 for /, 404 for anything else."""
    server = ThreadingHTTPServer((ADDR_HTTP, 0), _StatusHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ADDR_HTTP, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


@pytest.fixture
def live_capture() -> Callable[..., Any]:
    """The run_capture helper, as a fixture (test modules cannot import conftest by name)."""
    return run_capture


@pytest.fixture
def ask_dns() -> Callable[..., int | None]:
    return dns_query
