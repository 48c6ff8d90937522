"""Servers that misbehave on purpose, for tests of the layered probes.

Every server binds to whatever address it is given (127.0.0.x in the plain
tests; an address inside a network namespace when the lab's netns fixtures run
them there), picks a free port when given port 0, runs in daemon threads, and
stops cleanly from ``stop()`` even while a handler is stalling: stalls wait on
the server's stop event, never on a bare sleep.

- ``MisbehavingHTTPServer``: one path per fault (slow, 502, 504, 302 to a
  challenge or login page, 403 from a "WAF", stall before headers, stall in
  the body, drip the body forever). Optional TLS.
- ``TLSCertLab``: certificates made by a throwaway test CA (trustme) for each
  certificate fault: good, expired, not yet valid, wrong name, self-signed,
  leaf without its intermediate, expired from an untrusted CA, weak key and
  SHA-1 signature.
- ``StallServer``: accepts TCP connections and never says a word.
- ``GatewayProxy``: a reverse proxy whose upstream timeout turns a slow backend into a 504.
- ``FakeDNSServer``: UDP and TCP on one port, answers from a dict, and can
  answer NXDOMAIN, SERVFAIL, REFUSED, slowly, or not at all, per name.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: Where the challenge redirect points: the path a CDN's bot check uses.
CHALLENGE_PATH = "/cdn-cgi/challenge-platform/h/b/orchestrate/jsch"
LOGIN_PATH = "/login?next=/api"


# --------------------------------------------------------------------- HTTP


class _HTTPHandler(BaseHTTPRequestHandler):
    """Paths (query ``ms`` sets a delay where it applies):

    /ok                 200 "ok"
    /slow?ms=N          200 after N ms
    /status/CODE        that status (502, 504, 499 ...) with a short body
    /app                200, except every Nth request (``challenge_every``): 302 to the challenge
    /challenge          302 to a CDN challenge page (which answers 200)
    /login-redirect     302 to a login page
    /see-other          303 to /ok (an innocent redirect)
    /loop               302 to itself, forever
    /waf                403 with a WAF's block page and header
    /stall              reads the request, then never answers
    /stall-body         headers and part of the body, then nothing
    /drip               one byte every 200 ms, forever (until the client gives up)
    """

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, as from a real server

    def log_message(self, format: str, *args: Any) -> None:
        self.server.requests.append(self.path)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        stop = self.server.stop_event
        if path == "/ok" or path == "/":
            self._send(200, b"ok\n")
        elif path == "/slow":
            delay_ms = int(query.get("ms", ["1000"])[0])
            if stop.wait(delay_ms / 1000.0):
                return
            self._send(200, b"slow but ok\n")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, f"status {code}\n".encode())
        elif path == "/app":
            # A WAF that sends every Nth visitor to its challenge page (0: nobody).
            every = self.server.challenge_every
            with self.server.lock:
                self.server.app_requests += 1
                count = self.server.app_requests
            if every and count % every == 0:
                self._send(302, b"", {"Location": CHALLENGE_PATH + "?__cf_chl_rt_tk=lab"})
            else:
                self._send(200, b"app ok\n")
        elif path == "/challenge":
            self._send(302, b"", {"Location": CHALLENGE_PATH})
        elif path == CHALLENGE_PATH:
            self._send(200, b"<html>Checking your browser before accessing...</html>")
        elif path == "/login-redirect":
            self._send(302, b"", {"Location": LOGIN_PATH})
        elif path == "/login":
            self._send(200, b"<html>Please sign in</html>")
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        elif path == "/see-other":
            self._send(303, b"", {"Location": "/ok"})
        elif path == "/waf":
            self._send(403, b"<html>Request blocked by the web application firewall.</html>",
                       {"Server": "awselb/2.0", "X-Amzn-Waf-Action": "block"})
        elif path == "/stall":
            stop.wait()
        elif path == "/stall-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            stop.wait()
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            while not stop.wait(0.2):
                try:
                    self.wfile.write(b".")
                    self.wfile.flush()
                except OSError:
                    return
        else:
            self._send(404, b"no such fault\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.stop_event = threading.Event()
        self.requests: list[str] = []
        self.tls = tls
        self.challenge_every = 0
        self.app_requests = 0
        self.lock = threading.Lock()
        super().__init__(address, _HTTPHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's own thread, so a client that
        # aborts it (a bad certificate, a test's timeout) never blocks accept().
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose in these tests; tracebacks would be noise


class _ThreadedServer:
    """Start/stop plumbing shared by the socketserver-based servers."""

    _server: socketserver.BaseServer
    _stop: threading.Event

    def _start_thread(self, *servers: socketserver.BaseServer) -> None:
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for s in servers]
        for thread in self._threads:
            thread.start()

    def _stop_servers(self, *servers: socketserver.BaseServer) -> None:
        self._stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


class MisbehavingHTTPServer(_ThreadedServer):
    """HTTP (or HTTPS, given a server SSLContext) with one path per fault; see _HTTPHandler."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self._server = self._http = _HTTPServer((host, port), tls)
        self._stop = self._server.stop_event
        self.host = host
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"

    @property
    def requests(self) -> list[str]:
        """Paths requested so far (to check what the client actually fetched)."""
        return self._http.requests

    def challenge(self, every: int, first: int | None = None) -> None:
        """Send every Nth request to /app to the challenge page (0: none), the first one at request ``first``."""
        self._http.challenge_every = every
        self._http.app_requests = every - first if every and first else 0

    def set_tls(self, tls: ssl.SSLContext) -> None:
        """Serve another certificate from the next connection on (a fixed deployment)."""
        self._http.tls = tls

    def url(self, path: str = "/ok", host: str | None = None) -> str:
        name = host or self.host
        name = f"[{name}]" if ":" in name else name
        return f"{self.scheme}://{name}:{self.port}{path}"

    def start(self) -> MisbehavingHTTPServer:
        self._start_thread(self._server)
        return self

    def stop(self) -> None:
        self._stop_servers(self._server)


class StallServer(_ThreadedServer):
    """Accepts TCP connections and then says nothing (a hung process or a full backend)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._stop = threading.Event()
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)  # keep it open: the client must hit its own read timeout

    def start(self) -> StallServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()


class _GatewayHandler(BaseHTTPRequestHandler):
    server: _GatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Server", "lab-gateway")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        owner = self.server.owner
        started = time.monotonic()
        upstream = http.client.HTTPConnection(owner.upstream_host, owner.upstream_port,
                                              timeout=owner.upstream_timeout)
        try:
            upstream.request("GET", owner.upstream_path, headers={"Host": f"{owner.upstream_host}"})
            response = upstream.getresponse()
            body = response.read()
        except TimeoutError:
            waited = time.monotonic() - started
            self._send(504, f"upstream timed out after {waited:.1f} s\n".encode())
            return
        except OSError as exc:
            self._send(502, f"upstream failed: {exc}\n".encode())
            return
        finally:
            upstream.close()
        self._send(response.status, body, {"X-Upstream-Ms": f"{(time.monotonic() - started) * 1000:.0f}"})


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], owner: GatewayProxy) -> None:
        self.owner = owner
        super().__init__(address, _GatewayHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class GatewayProxy(_ThreadedServer):
    """A reverse proxy with an upstream timeout, as nginx's proxy_read_timeout: a backend slower than
    ``upstream_timeout`` becomes a 504 Gateway Timeout after that long.

    Every request goes to ``upstream_path`` on the upstream (change it to heal a slow backend).
    """

    def __init__(self, host: str, port: int, upstream_host: str, upstream_port: int, upstream_path: str,
                 upstream_timeout: float = 1.0) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.upstream_path, self.upstream_timeout = upstream_path, upstream_timeout
        self._stop = threading.Event()
        self._server = _GatewayServer((host, port), self)
        self.host, self.port = host, self._server.server_address[1]

    def start(self) -> GatewayProxy:
        self._start_thread(self._server)
        return self

    def stop(self) -> None:
        self._stop_servers(self._server)


# ---------------------------------------------------------------------- TLS


def _self_signed(name: str, directory: Path) -> tuple[Path, Path]:
    """A leaf that signs itself (issuer == subject), written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class TLSCertLab:
    """Server SSLContexts for each certificate fault, all made by one throwaway test CA.

    The root CA signs an intermediate, which signs the leaves (as public CAs
    do), so "leaf without its intermediate" is a real misconfiguration: the
    leaf is valid, but a client that trusts only the root cannot build a path.
    ``ca_file`` holds the root alone: pass it to a probe as its trust store.
    """

    directory: Path
    name: str = "good.test"
    """The host name the certificates are made for (also valid: 127.0.0.1)."""
    ca: trustme.CA = field(init=False)
    ca_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="warroom test root")
        self.intermediate = self.ca.create_child_ca()
        self.ca_file = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _leaf(self, *identities: str, **kwargs: Any) -> trustme.LeafCert:
        return self.intermediate.issue_cert(*identities, **kwargs)

    def good(self) -> ssl.SSLContext:
        ctx = self._context()
        self._leaf(self.name, "127.0.0.1").configure_cert(ctx)  # sends leaf + intermediate
        return ctx

    def expired(self) -> ssl.SSLContext:
        now = dt.datetime.now(dt.timezone.utc)
        ctx = self._context()
        self._leaf(self.name, "127.0.0.1", not_before=now - dt.timedelta(days=60),
                   not_after=now - dt.timedelta(days=2)).configure_cert(ctx)
        return ctx

    def expired_wrong_name(self) -> ssl.SSLContext:
        """Two faults at once: OpenSSL names only one of them."""
        now = dt.datetime.now(dt.timezone.utc)
        ctx = self._context()
        self._leaf("other.test", not_before=now - dt.timedelta(days=60),
                   not_after=now - dt.timedelta(days=2)).configure_cert(ctx)
        return ctx

    def not_yet_valid(self) -> ssl.SSLContext:
        now = dt.datetime.now(dt.timezone.utc)
        ctx = self._context()
        self._leaf(self.name, "127.0.0.1", not_before=now + dt.timedelta(days=3),
                   not_after=now + dt.timedelta(days=90)).configure_cert(ctx)
        return ctx

    def wrong_name(self) -> ssl.SSLContext:
        ctx = self._context()
        self._leaf("other.test").configure_cert(ctx)
        return ctx

    def self_signed(self) -> ssl.SSLContext:
        ctx = self._context()
        cert_path, key_path = _self_signed(self.name, self.directory)
        ctx.load_cert_chain(str(cert_path), str(key_path))
        return ctx

    def missing_intermediate(self) -> ssl.SSLContext:
        leaf = self._leaf(self.name, "127.0.0.1")
        ctx = self._context()
        # Only the leaf and its key: the intermediate is "forgotten", as in the real mistake.
        cert_path = self.directory / "leaf-only.pem"
        key_path = self.directory / "leaf-only.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert_path))
        leaf.private_key_pem.write_to_path(str(key_path))
        ctx.load_cert_chain(str(cert_path), str(key_path))
        return ctx

    def expired_untrusted(self) -> ssl.SSLContext:
        """Two faults at once: an expired leaf (with its intermediate) from a CA the client does not trust.

        OpenSSL stops at the unknown issuer and never mentions the dates.
        """
        now = dt.datetime.now(dt.timezone.utc)
        other = trustme.CA(organization_name="warroom untrusted root").create_child_ca()
        ctx = self._context()
        other.issue_cert(self.name, "127.0.0.1", not_before=now - dt.timedelta(days=60),
                         not_after=now - dt.timedelta(days=1)).configure_cert(ctx)
        return ctx

    def weak(self) -> ssl.SSLContext:
        """A leaf from the trusted intermediate with a 1024-bit RSA key, signed with SHA-1.

        cryptography refuses to sign with SHA-1, so the openssl command does (scripts/apt.d/faults.txt).
        The server's own context drops to security level 0 to be allowed to serve it, as an old
        appliance would; a client at the default level rejects it.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        paths = {name: self.directory / f"weak-{name}.pem" for name in ("key", "csr", "cert", "ca", "cakey")}
        paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        self.intermediate.cert_pem.write_to_path(str(paths["ca"]))
        self.intermediate.private_key_pem.write_to_path(str(paths["cakey"]))
        subprocess.run(["openssl", "req", "-new", "-key", str(paths["key"]), "-subj", f"/CN={self.name}",
                        "-addext", f"subjectAltName=DNS:{self.name},IP:127.0.0.1", "-out", str(paths["csr"])],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", str(paths["csr"]), "-CA", str(paths["ca"]),
                        "-CAkey", str(paths["cakey"]), "-CAcreateserial", "-sha1", "-days", "30",
                        "-copy_extensions", "copy", "-out", str(paths["cert"])], check=True, capture_output=True)
        paths["cert"].write_bytes(paths["cert"].read_bytes() + self.intermediate.cert_pem.bytes())
        ctx = self._context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(str(paths["cert"]), str(paths["key"]))
        return ctx

    FAULTS = ("good", "expired", "not_yet_valid", "wrong_name", "self_signed", "missing_intermediate",
              "expired_wrong_name", "expired_untrusted", "weak")

    def context(self, fault: str) -> ssl.SSLContext:
        if fault not in self.FAULTS:
            raise ValueError(f"unknown certificate fault {fault!r}; one of {self.FAULTS}")
        return getattr(self, fault)()


# ---------------------------------------------------------------------- DNS


@dataclass
class DNSBehaviour:
    """How the fake DNS server answers one name."""

    addresses: list[str] = field(default_factory=list)
    """A/AAAA answers (by address family)."""
    cname: str | None = None
    """Answer with a CNAME to this name first (then that name's records)."""
    rcode: str = "NOERROR"
    """NOERROR, NXDOMAIN, SERVFAIL or REFUSED."""
    delay_ms: int = 0
    """Wait this long before answering."""
    drop: bool = False
    """Never answer (the client times out)."""
    ttl: int = 300


class _DNSUDPHandler(socketserver.BaseRequestHandler):
    server: Any

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.owner.answer(data)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _DNSTCPHandler(socketserver.BaseRequestHandler):
    server: Any

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5)
        try:
            header = conn.recv(2)
            if len(header) < 2:
                return
            length = int.from_bytes(header, "big")
            data = b""
            while len(data) < length:
                chunk = conn.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        reply = self.server.owner.answer(data)
        if reply is not None:
            conn.sendall(len(reply).to_bytes(2, "big") + reply)


class _UDP(socketserver.ThreadingUDPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class _TCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class FakeDNSServer(_ThreadedServer):
    """A DNS server on UDP and TCP (same port) that answers what the test tells it.

    ``names`` maps a name (with or without the trailing dot) to a DNSBehaviour;
    unknown names get ``default`` (NXDOMAIN unless told otherwise). Behaviours
    may be changed while it runs (``set``), e.g. to make it start lying.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 names: dict[str, DNSBehaviour] | None = None,
                 default: DNSBehaviour | None = None) -> None:
        self._stop = threading.Event()
        self.names: dict[str, DNSBehaviour] = {}
        for name, behaviour in (names or {}).items():
            self.set(name, behaviour)
        self.default = default or DNSBehaviour(rcode="NXDOMAIN")
        self.queries: list[tuple[str, str]] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _attempt in range(20):
            _UDP.address_family = family
            udp = _UDP((host, port), _DNSUDPHandler)
            chosen = udp.server_address[1]
            try:
                _TCP.address_family = family
                tcp = _TCP((host, chosen), _DNSTCPHandler)
            except OSError:
                udp.server_close()  # the TCP twin of this UDP port is taken: try another
                if port:
                    raise
                continue
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        udp.owner = tcp.owner = self  # type: ignore[attr-defined]
        self._udp, self._tcp = udp, tcp
        self.host = host
        self.port = chosen

    @property
    def address(self) -> str:
        """"ip:port" as the dns probe's ``resolvers`` option takes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def set(self, name: str, behaviour: DNSBehaviour) -> None:
        self.names[dns.name.from_text(name).to_text()] = behaviour

    def _records(self, response: dns.message.Message, qname: dns.name.Name, qtype: int) -> int:
        """Fill the answer section for qname, following our own CNAMEs; return the rcode."""
        seen = 0
        while seen < 8:
            seen += 1
            behaviour = self.names.get(qname.to_text(), self.default)
            if behaviour.rcode != "NOERROR":
                return dns.rcode.from_text(behaviour.rcode)
            if behaviour.cname:
                target = dns.name.from_text(behaviour.cname)
                response.answer.append(dns.rrset.from_text(qname, behaviour.ttl, "IN", "CNAME", target.to_text()))
                qname = target
                continue
            wanted = [a for a in behaviour.addresses if (":" in a) == (qtype == dns.rdatatype.AAAA)]
            if wanted and qtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                rtype = dns.rdatatype.to_text(qtype)
                response.answer.append(dns.rrset.from_text_list(qname, behaviour.ttl, "IN", rtype, wanted))
            return dns.rcode.NOERROR
        return dns.rcode.SERVFAIL

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # garbage in: stay silent like a real server would
            return None
        question = query.question[0]
        self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        behaviour = self.names.get(question.name.to_text(), self.default)
        if behaviour.drop:
            return None
        if behaviour.delay_ms and self._stop.wait(behaviour.delay_ms / 1000.0):
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        response.set_rcode(self._records(response, question.name, question.rdtype))
        return response.to_wire()

    def start(self) -> FakeDNSServer:
        self._start_thread(self._udp, self._tcp)
        return self

    def stop(self) -> None:
        self._stop_servers(self._udp, self._tcp)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for server side effects)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
