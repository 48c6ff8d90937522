"""The fault lab: each scenario of the issue-10 contract, built from real servers, resolvers and links.

One :class:`FaultLab` is a client namespace (where ``warroom diagnose`` runs,
through :meth:`FaultLab.client_argv`) and the lab's resolvers inside it
(FakeDNSServer on 127.0.0.53 and 127.0.0.54, port 53). ``ip netns exec``
bind-mounts ``/etc/netns/<client>/`` over ``/etc``: the client's resolv.conf
names those two resolvers only, its hosts file knows only localhost, and its
trust store (``/etc/ssl``) holds only the lab's test root. No DNS query, and
no packet at all, leaves the machine: the client namespace has no default
route, only the links to the servers' namespaces.

Each server namespace is linked to the client directly (``Lab.namespace(peer=
client)``), so faults on a link (delay, jitter, loss, dropped SYNs, resets)
act on packets from the client to that server only. Servers run in this
process, inside their namespace (:func:`in_netns`: a thread joins the
namespace, binds, and starts the server's threads, which inherit it), except
PostgreSQL and the leaking client, which are processes.

A builder per scenario (``BUILDERS``) sets the fault up and returns a
:class:`Scenario`: the faulty target(s) as text, the healthy control target(s),
what the contract says the top finding must be (``EXPECTED``), the config and
environment the run needs, and ``heal()``, which removes the fault (for the
fix-validation tests of issue 11). ``FaultLab.close()`` removes every
namespace, rule, server, process and file it made.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tests.lab.netns import Lab, LabError, Namespace, _read_line
from tests.lab.servers import DNSBehaviour, FakeDNSServer, GatewayProxy, MisbehavingHTTPServer, StallServer, TLSCertLab

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
PRIMARY_DNS, SECONDARY_DNS = "127.0.0.53", "127.0.0.54"
PG_PASSWORD = "lab-Pg-Secret-2718"
PG_PASSWORD_ENV = "WR_LAB_PGPASSWORD"
#: PostgreSQL's slots: max_connections minus the superuser reserve is what applications get.
PG_MAX_CONNECTIONS, PG_RESERVED = 6, 2


def in_netns(ns: Namespace, make: Callable[[], T]) -> T:
    """Run ``make`` in a thread that has joined ``ns``'s network namespace; return what it returns.

    Sockets it creates belong to ``ns`` for good, and threads it starts inherit ``ns``: a server
    built and started here listens and connects inside the namespace while this process stays put.
    """
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {ns.name}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = make()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{ns.name}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Expect:
    """The contract's right top finding: layer and words in the title (layer None: healthy)."""

    layer: str | None
    words: tuple[str, ...] = ()
    about_this_host: bool = False
    """The finding is about this host (target ""), listed below every target's finding."""


#: The contract table (/work/shared/DIAGNOSIS_CONTRACT.md), by scenario.
EXPECTED: dict[str, Expect] = {
    "nxdomain": Expect("dns", ("nxdomain",)),
    "resolvers_disagree": Expect("dns", ("disagree",)),
    "slow_resolver": Expect("dns", ("slow",)),
    "refused": Expect("tcp", ("refused",)),
    "syn_drop": Expect("tcp", ("syn",)),
    "backlog": Expect("tcp", ("syn",)),
    "lossy_jittery_light": Expect("path", ("loss",)),
    "lossy_jittery_heavy": Expect("path", ("loss",)),
    "tls_expired": Expect("tls", ("expired",)),
    "tls_incomplete_chain": Expect("tls", ("intermediate",)),
    "tls_wrong_name": Expect("tls", ("name",)),
    "tls_expired_untrusted": Expect("tls", ("expired", "untrusted")),
    "proxy_504": Expect("http", ("504",)),
    "stall": Expect("http", ("response",)),
    "pg_out_of_slots": Expect("pool", ("too many clients",)),
    "close_wait_leak": Expect("pool", ("close_wait",)),
    "waf_challenge_small": Expect("http", ("challenge",)),
    "waf_challenge_large": Expect("http", ("challenge",)),
    "egress_loss_resets": Expect("path", ()),  # the external target named; the internal one stays quiet
    # Not a row of the table but a rule of the contract: a leak no target explains stays under "this host".
    "unrelated_close_wait": Expect("pool", ("close_wait",), about_this_host=True),
    "healthy": Expect(None),
    "healthy_jitter": Expect(None),
}


@dataclass
class Scenario:
    """One fault, set up: what to probe, what the answer must be, and how to take the fault away."""

    name: str
    faulty: list[str]
    """The targets with the fault, as a user types them (empty for the healthy scenarios)."""
    controls: list[str]
    """Targets that must stay free of warning and critical findings."""
    heal: Callable[[], None]
    config: list[str] = field(default_factory=list)
    """TOML lines this scenario needs in the run's --config file."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment the run needs (a password named by password_env)."""

    @property
    def expect(self) -> Expect:
        return EXPECTED[self.name]

    @property
    def targets(self) -> list[str]:
        return self.faulty + self.controls


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)


class FaultLab:
    """The client namespace with its resolvers, and everything the scenarios add; ``close()`` undoes it all."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._servers: list[_Stoppable] = []
        self._dirs: list[Path] = []
        self._named: dict[str, Namespace] = {}
        self._once: dict[str, Any] = {}
        self.client = lab.namespace()
        self.etc = Path("/etc/netns") / self.client.name
        try:
            self.workdir = Path(tempfile.mkdtemp(prefix="warroom-faults-"))
            self._dirs.append(self.workdir)
            self.certs = TLSCertLab(self.workdir / "certs", name="tls.lab")
            self.primary = self.server(self.client, lambda: FakeDNSServer(PRIMARY_DNS, 53).start())
            self.secondary = self.server(self.client, lambda: FakeDNSServer(SECONDARY_DNS, 53).start())
            self._write_etc()
        except BaseException:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------
    def _write_etc(self) -> None:
        self.etc.mkdir(parents=True, exist_ok=True)
        self._dirs.append(self.etc)
        (self.etc / "resolv.conf").write_text(f"nameserver {PRIMARY_DNS}\nnameserver {SECONDARY_DNS}\n")
        (self.etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        # /etc/ssl is replaced whole: the lab root is the only trusted CA, as a company CA would be.
        certs = self.etc / "ssl" / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.certs.ca_file, certs / "ca-certificates.crt")
        if Path("/etc/ssl/openssl.cnf").exists():
            shutil.copy("/etc/ssl/openssl.cnf", self.etc / "ssl" / "openssl.cnf")

    def server(self, ns: Namespace, make: Callable[[], S]) -> S:
        """Build and start a server inside ``ns``; it is stopped by close()."""
        started = in_netns(ns, make)
        self._servers.append(started)
        return started

    def forget(self, server: _Stoppable) -> None:
        """Stop one server now (a heal that replaces it)."""
        server.stop()
        if server in self._servers:
            self._servers.remove(server)

    def namespace(self, name: str) -> Namespace:
        """A server namespace linked to the client, reachable as ``name`` through the lab's resolvers."""
        ns = self.lab.namespace(peer=self.client)
        self.publish(name, ns.addr)
        self._named[name] = ns
        return ns

    def publish(self, name: str, address: str, **behaviour: Any) -> None:
        """Both resolvers answer ``name`` with ``address`` (and ``behaviour``: delay_ms, ...)."""
        for resolver in (self.primary, self.secondary):
            resolver.set(name, DNSBehaviour(addresses=[address], ttl=5, **behaviour))

    def named(self, name: str) -> Namespace:
        """The namespace called ``name``: made on first use, then shared by the scenarios that use it."""
        return self._named.get(name) or self.namespace(name)

    def once(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` the first time ``key`` is asked for, the same thing after."""
        if key not in self._once:
            self._once[key] = make()
        return self._once[key]  # type: ignore[no-any-return]

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the client namespace, with its resolv.conf, hosts and trust store."""
        return ["ip", "netns", "exec", self.client.name, *argv]

    def warroom_argv(self, *args: str) -> list[str]:
        """``python3 -m console.cli ARGS`` from this worktree, inside the client namespace."""
        return self.client_argv([sys.executable, "-m", "console.cli", *args])

    def run(self, argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        return subprocess.run(self.client_argv(argv), capture_output=True, text=True, timeout=timeout,
                              env=full_env, cwd=REPO)

    def control(self) -> str:
        """The shared healthy control: plain HTTP on a clean link."""
        self.once("control", lambda: self._web(self.named("web.lab"), 8080))
        return "http://web.lab:8080/ok"

    def _web(self, ns: Namespace, port: int, host: str = "0.0.0.0", **kwargs: Any) -> MisbehavingHTTPServer:
        return self.server(ns, lambda: MisbehavingHTTPServer(host, port, **kwargs).start())

    def close(self) -> None:
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                server.stop()
        self._servers.clear()
        with contextlib.suppress(LabError):
            self.lab.close()
        for directory in self._dirs:
            shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------------- DNS


def nxdomain(lab: FaultLab) -> Scenario:
    """The name does not exist: both resolvers say NXDOMAIN. Heal: publish it (the control's server)."""
    control = lab.control()
    web = lab._named["web.lab"]
    return Scenario("nxdomain", ["http://missing.lab:8080/ok"], [control],
                    heal=lambda: lab.publish("missing.lab", web.addr))


def resolvers_disagree(lab: FaultLab) -> Scenario:
    """The second resolver gives a stale address (nothing listens there); the first, the right one."""
    ns = lab.named("api.lab")
    lab._web(ns, 8080)
    lab.secondary.set("api.lab", DNSBehaviour(addresses=[ns.host_addr], ttl=5))  # the client's own end: stale
    return Scenario("resolvers_disagree", ["http://api.lab:8080/ok"], [lab.control()],
                    heal=lambda: lab.publish("api.lab", ns.addr))


def slow_resolver(lab: FaultLab) -> Scenario:
    """Both resolvers take 2 s to answer for the name; the server behind it is fine."""
    ns = lab.named("slow.lab")
    lab._web(ns, 8080)
    lab.publish("slow.lab", ns.addr, delay_ms=2000)
    return Scenario("slow_resolver", ["http://slow.lab:8080/ok"], [lab.control()],
                    heal=lambda: lab.publish("slow.lab", ns.addr))


# ------------------------------------------------------------------------- TCP


def refused(lab: FaultLab) -> Scenario:
    """Nothing listens on the port: the kernel answers SYNs with RST. Heal: start the service."""
    ns = lab.namespace("refused.lab")

    def heal() -> None:
        lab._web(ns, 7001)

    return Scenario("refused", ["refused.lab:7001"], [lab.control()], heal=heal)


def syn_drop(lab: FaultLab) -> Scenario:
    """A firewall in front of a listening server drops its SYNs. Heal: flush the rule."""
    ns = lab.namespace("fw.lab")
    lab._web(ns, 7002)
    ns.drop_syn(7002)
    return Scenario("syn_drop", ["fw.lab:7002"], [lab.control()], heal=ns.clear_firewall)


class _Backlog:
    """A listener that never accepts (as the demo's backlog target): once its queue is full the
    kernel drops SYNs and connects time out. ``accept_all()`` heals it: a thread accepts and closes."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(0)
        self.fillers = []
        for _ in range(3):  # fill the accept queue now, as a burst of clients would
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            self.fillers.append(filler)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> _Backlog:
        return self

    def accept_all(self) -> None:
        def serve() -> None:
            self.sock.settimeout(0.1)
            while not self._stop.is_set():
                with contextlib.suppress(OSError):
                    conn, _ = self.sock.accept()
                    conn.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for filler in self.fillers:
            filler.close()
        self.sock.close()


def backlog(lab: FaultLab) -> Scenario:
    ns = lab.namespace("backlog.lab")
    listener = lab.server(ns, lambda: _Backlog("0.0.0.0", 7003))
    return Scenario("backlog", ["backlog.lab:7003"], [lab.control()], heal=listener.accept_all)


# ------------------------------------------------------------------------ path


def _lossy(lab: FaultLab, name: str, scenario: str, **shaping: Any) -> Scenario:
    ns = lab.namespace(name)
    lab._web(ns, 8080)
    ns.shape(delay_ms=20.0, jitter_ms=10.0, **shaping)
    return Scenario(scenario, [f"http://{name}:8080/ok"], [lab.control()], heal=ns.clear_shaping)


def lossy_jittery_light(lab: FaultLab) -> Scenario:
    """20 ± 10 ms and every 10th packet toward the server lost (10%, exactly: a short run sees it)."""
    return _lossy(lab, "lossy1.lab", "lossy_jittery_light", loss_every=10)


def lossy_jittery_heavy(lab: FaultLab) -> Scenario:
    """20 ± 10 ms and 30% of the packets toward the server lost at random."""
    return _lossy(lab, "lossy2.lab", "lossy_jittery_heavy", loss=0.30)


def egress_loss_resets(lab: FaultLab) -> Scenario:
    """Toward the "external" server: every 8th packet lost and a fifth of the connections reset after the
    handshake (a NAT gateway on the way out); the "internal" server's link is clean."""
    external = lab.namespace("ext.lab")
    lab._web(external, 8080)
    external.shape(loss_every=8)
    external.reset_some(8080, 0.2)
    internal = lab.namespace("int.lab")
    lab._web(internal, 8080)

    def heal() -> None:
        external.clear_firewall()
        external.clear_shaping()

    return Scenario("egress_loss_resets", ["http://ext.lab:8080/ok"], ["http://int.lab:8080/ok"], heal=heal)


# ------------------------------------------------------------------------- TLS


def _tls(lab: FaultLab, scenario: str, fault: str, port: int) -> Scenario:
    ns = lab.named("tls.lab")
    lab.once("tls-control", lambda: lab._web(ns, 8440, tls=lab.certs.good()))
    server = lab._web(ns, port, tls=lab.certs.context(fault))
    return Scenario(scenario, [f"https://tls.lab:{port}/ok"], ["https://tls.lab:8440/ok"],
                    heal=lambda: server.set_tls(lab.certs.good()))


def tls_expired(lab: FaultLab) -> Scenario:
    return _tls(lab, "tls_expired", "expired", 8441)


def tls_incomplete_chain(lab: FaultLab) -> Scenario:
    return _tls(lab, "tls_incomplete_chain", "missing_intermediate", 8442)


def tls_wrong_name(lab: FaultLab) -> Scenario:
    return _tls(lab, "tls_wrong_name", "wrong_name", 8443)


def tls_expired_untrusted(lab: FaultLab) -> Scenario:
    return _tls(lab, "tls_expired_untrusted", "expired_untrusted", 8444)


# ------------------------------------------------------------------------ HTTP


def proxy_504(lab: FaultLab) -> Scenario:
    """A proxy that waits 1 s for its backend, in front of a backend that answers in 3 s."""
    ns = lab.namespace("proxy.lab")
    backend = lab._web(ns, 9000, host="127.0.0.1")
    proxy = lab.server(ns, lambda: GatewayProxy("0.0.0.0", 8080, "127.0.0.1", backend.port, "/slow?ms=3000",
                                                upstream_timeout=1.0).start())

    def heal() -> None:
        proxy.upstream_path = "/ok"

    return Scenario("proxy_504", ["http://proxy.lab:8080/api"], [lab.control()], heal=heal)


def stall(lab: FaultLab) -> Scenario:
    """Accepts connections and never answers. Heal: a working server on the port."""
    ns = lab.namespace("stall.lab")
    stalling = lab.server(ns, lambda: StallServer("0.0.0.0", 8080).start())

    def heal() -> None:
        lab.forget(stalling)
        lab._web(ns, 8080)

    return Scenario("stall", ["http://stall.lab:8080/ok"], [lab.control()], heal=heal)


def _waf(lab: FaultLab, scenario: str, port: int, every: int) -> Scenario:
    ns = lab.named("waf.lab")
    server = lab._web(ns, port)
    # The first challenge comes with the 3rd request instead of the Nth: the same rate, and a short run sees it.
    server.challenge(every, first=3)
    return Scenario(scenario, [f"http://waf.lab:{port}/app"], [lab.control()], heal=lambda: server.challenge(0))


def waf_challenge_small(lab: FaultLab) -> Scenario:
    """Every 10th request is sent to the challenge page."""
    return _waf(lab, "waf_challenge_small", 8080, 10)


def waf_challenge_large(lab: FaultLab) -> Scenario:
    """Every 3rd request is sent to the challenge page."""
    return _waf(lab, "waf_challenge_large", 8081, 3)


# ------------------------------------------------------------------------ pools


def _pg_bin(name: str) -> str:
    from tests.host.conftest import _pg_bin as find

    return find(name)


class _Postgres:
    """A throwaway cluster inside a namespace, listening on its address, with a few slots only."""

    def __init__(self, ns: Namespace, base: Path) -> None:
        self.ns, self.base = ns, base
        data, sock = base / "data", base / "sock"
        sock.mkdir(parents=True)
        (base / "pw").write_text("bootstrap\n")
        subprocess.run(["chown", "-R", "postgres:postgres", str(base)], check=True)
        runuser = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*runuser, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", f"--pwfile={base / 'pw'}", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 10.254.0.0/16 scram-sha-256\n")  # the client namespace's links
        self.proc = ns.popen([*runuser, _pg_bin("postgres"), "-D", str(data), "-k", str(sock), "-p", "5432",
                              "-c", "listen_addresses=*", "-c", f"max_connections={PG_MAX_CONNECTIONS}",
                              "-c", f"superuser_reserved_connections={PG_RESERVED}", "-c", "fsync=off",
                              "-c", "shared_buffers=16MB"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            done = ns.run(_pg_bin("pg_isready"), "-h", str(sock), "-p", "5432", check=False)
            if done.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise LabError("PostgreSQL in the lab did not start")
        ns.run(*runuser, _pg_bin("psql"), "-h", str(sock), "-p", "5432", "-U", "postgres", "-d", "postgres",
               "-v", "ON_ERROR_STOP=1", "-c", f"CREATE ROLE app LOGIN PASSWORD '{PG_PASSWORD}'; "
                                               "GRANT pg_read_all_stats TO app;")
        self.filler: subprocess.Popen[bytes] | None = None

    def fill(self) -> None:
        """Take every slot applications may use, and hold them (a leaking pool elsewhere)."""
        slots = PG_MAX_CONNECTIONS - PG_RESERVED
        code = ("import psycopg, sys, time\n"
                f"held = [psycopg.connect(host='127.0.0.1', port=5432, user='app', password={PG_PASSWORD!r}, "
                f"dbname='postgres', application_name='leaky-pool') for _ in range({slots})]\n"
                "print('ready', flush=True)\n"
                "time.sleep(3600)\n")
        self.filler = self.ns.python(["-c", code], stdout=subprocess.PIPE)
        if _read_line(self.filler, 15.0) != "ready":
            raise LabError("the PostgreSQL slot filler did not connect")

    def release(self) -> None:
        if self.filler is not None:
            self.ns.stop(self.filler)
            self.filler = None

    def stop(self) -> None:
        self.release()
        self.ns.stop(self.proc)


def pg_out_of_slots(lab: FaultLab) -> Scenario:
    """PostgreSQL with every application slot held by another client: new connections are turned away."""
    ns = lab.namespace("db.lab")
    base = Path(tempfile.mkdtemp(prefix="warroom-faults-pg-"))  # its own: the postgres user must reach it
    lab._dirs.append(base)
    pg = _Postgres(ns, base)
    lab._servers.append(pg)
    pg.fill()
    config = ["[[postgres]]", 'dsn = "postgresql://app@db.lab:5432/postgres"', f'password_env = "{PG_PASSWORD_ENV}"']
    return Scenario("pg_out_of_slots", ["db.lab:5432"], [lab.control()], heal=pg.release, config=config,
                    env={PG_PASSWORD_ENV: PG_PASSWORD})


_LEAKER = """
import socket, sys, time
address = (sys.argv[1], int(sys.argv[2]))
held = []
print("ready", flush=True)
while len(held) < 400:
    try:
        held.append(socket.create_connection(address, timeout=2))  # and never closed: the leak
    except OSError:
        pass
    time.sleep(0.05 if len(held) < 20 else 0.5)
time.sleep(3600)
"""


def _leak(lab: FaultLab, name: str, port: int) -> Callable[[], None]:
    """A server at ``name`` that closes each connection at once, and a client of ours (in the client
    namespace) that never closes its end: its sockets pile up in CLOSE_WAIT. Returns the heal."""
    ns = lab.namespace(name)
    ns.tcp_listener(port)
    leaker = lab.client.python(["-c", _LEAKER, ns.addr, str(port)], stdout=subprocess.PIPE)
    if _read_line(leaker, 10.0) != "ready":
        raise LabError("the leaking client did not start")
    return lambda: lab.client.stop(leaker)


def close_wait_leak(lab: FaultLab) -> Scenario:
    """The target's own client leaks: CLOSE_WAIT toward the target. Heal: stop the leaking client."""
    return Scenario("close_wait_leak", ["leak.lab:7100"], [lab.control()], heal=_leak(lab, "leak.lab", 7100))


def unrelated_close_wait(lab: FaultLab) -> Scenario:
    """A leak in another process toward a server nobody asked about: a finding about this host only,
    below the targets' findings, and no alarm on the (healthy) target that is asked about."""
    return Scenario("unrelated_close_wait", [], [lab.control()], heal=_leak(lab, "other.lab", 7200))


# ---------------------------------------------------------------------- healthy


def healthy(lab: FaultLab) -> Scenario:
    ns = lab.namespace("healthy.lab")
    lab._web(ns, 8080)
    return Scenario("healthy", [], ["http://healthy.lab:8080/ok"], heal=lambda: None)


def healthy_jitter(lab: FaultLab) -> Scenario:
    """A clean link with a few ms of delay and jitter (5 ± 3 ms), no loss."""
    ns = lab.namespace("jitter.lab")
    lab._web(ns, 8080)
    ns.shape(delay_ms=5.0, jitter_ms=3.0)
    return Scenario("healthy_jitter", [], ["http://jitter.lab:8080/ok"], heal=lambda: None)


BUILDERS: dict[str, Callable[[FaultLab], Scenario]] = {
    builder.__name__: builder for builder in (
        nxdomain, resolvers_disagree, slow_resolver, refused, syn_drop, backlog, lossy_jittery_light,
        lossy_jittery_heavy, egress_loss_resets, tls_expired, tls_incomplete_chain, tls_wrong_name,
        tls_expired_untrusted, proxy_504, stall, pg_out_of_slots, close_wait_leak, unrelated_close_wait,
        waf_challenge_small, waf_challenge_large, healthy, healthy_jitter)
}
assert set(BUILDERS) == set(EXPECTED)

#: Scenarios that share one diagnose run: faults of one layer together, each with its own targets.
RUNS: dict[str, tuple[str, ...]] = {
    "dns": ("nxdomain", "resolvers_disagree", "slow_resolver"),
    "tcp": ("refused", "syn_drop", "backlog", "unrelated_close_wait"),
    "path": ("lossy_jittery_light", "lossy_jittery_heavy", "egress_loss_resets"),
    "tls": ("tls_expired", "tls_incomplete_chain", "tls_wrong_name", "tls_expired_untrusted"),
    "http": ("proxy_504", "stall", "waf_challenge_small", "waf_challenge_large"),
    "pool": ("pg_out_of_slots", "close_wait_leak"),
    "healthy": ("healthy", "healthy_jitter"),
}


def config_text(scenarios: Sequence[Scenario]) -> str:
    """The --config file for a run of these scenarios."""
    lines: list[str] = []
    for scenario in scenarios:
        lines += scenario.config
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- diagnose runs

ALARMS = ("warning", "critical")
#: Seconds of each run: as short as gives the right answer reliably (the probes run at 1 Hz; a WAF that
#: challenges one request in ten needs a few of them; TLS and DNS are asked at once).
#: Each is about twice the time the right findings took when measured (bench/diagnosis.py --grouped).
DURATIONS: dict[str, float] = {"dns": 7.0, "tcp": 10.0, "path": 10.0, "tls": 5.0, "http": 8.0, "pool": 6.0,
                               "healthy": 10.0}


@dataclass
class DiagnoseRun:
    """What one ``warroom diagnose --json --history`` run printed about a group of scenarios."""

    scenarios: list[Scenario]
    findings: list[dict[str, Any]]
    """The findings at the end, ranked, as printed."""
    history: list[dict[str, Any]]
    """Findings that appeared and cleared during the run."""
    returncode: int
    stderr: str
    seconds: float


def diagnose(lab: FaultLab, scenarios: Sequence[Scenario], duration: float) -> DiagnoseRun:
    """Run ``warroom diagnose`` in the client namespace on every target of ``scenarios`` at once."""
    config = lab.workdir / f"run-{'-'.join(s.name for s in scenarios)}.toml"
    config.write_text(config_text(scenarios))
    targets = [t for s in scenarios for t in s.targets]
    targets = list(dict.fromkeys(targets))  # a shared control once
    env: dict[str, str] = {}
    for scenario in scenarios:
        env.update(scenario.env)
    argv = [sys.executable, "-m", "console.cli", "diagnose", *targets, "--json", "--history",
            "--duration", f"{duration:g}", "--config", str(config)]
    started = time.monotonic()
    proc = lab.run(argv, timeout=duration + 60.0, env=env)
    took = time.monotonic() - started
    findings: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        (history if data.get("cleared") else findings).append(data)
    return DiagnoseRun(list(scenarios), findings, history, proc.returncode, proc.stderr, took)


@dataclass
class Verdict:
    """One scenario judged against the contract."""

    scenario: str
    right: bool
    """The right top finding for every faulty target (healthy: no alarm at all, and exit 0)."""
    seconds: float | None
    """first_seen of the right top finding minus the run's start (the slowest faulty target's)."""
    got: list[str]
    """What the run said instead, for a report: the top finding per faulty target, or the alarms."""
    false_alarms: list[str]
    """Warning or critical findings about the controls (or, healthy: any at all)."""


def _line(finding: dict[str, Any]) -> str:
    return (f"[{finding.get('severity')} {finding.get('layer')}] {finding.get('target') or 'this host'}: "
            f"{finding.get('title')}")


def judge(scenario: Scenario, run: DiagnoseRun) -> Verdict:
    """The contract's test: the first finding about each faulty target has the right layer, an alarm's
    severity and the words in its title; no control (healthy: nothing at all) ever raised an alarm."""
    expect = scenario.expect
    everything = run.findings + run.history
    if expect.layer is None:
        alarms = [_line(f) for f in everything if f.get("severity") in ALARMS]
        return Verdict(scenario.name, not alarms and run.returncode == 0, None, alarms, alarms)
    if expect.about_this_host:
        about_targets = [i for i, f in enumerate(run.findings) if f.get("target")]
        mine = [(i, f) for i, f in enumerate(run.findings) if not f.get("target") and f.get("layer") == expect.layer
                and all(word in str(f.get("title", "")).lower() for word in expect.words)]
        if not mine:
            return Verdict(scenario.name, False, None, ["no such finding about this host"], [])
        index, found = mine[0]
        right = all(i < index for i in about_targets)  # listed after every target's finding
        seconds = found.get("first_seen_s")
        false_alarms = [_line(f) for f in everything if f.get("target") in scenario.controls
                        and f.get("severity") in ALARMS]
        return Verdict(scenario.name, right, float(seconds) if right and isinstance(seconds, (int, float)) else None,
                       [f"#{index + 1} of {len(run.findings)}: {_line(found)}"], false_alarms)
    right, seconds, got = True, [], []
    for target in scenario.faulty:
        mine = [f for f in run.findings if f.get("target") == target]
        if not mine:
            right = False
            came_and_went = [f"{_line(f)} ({f.get('first_seen_s')} s, cleared)" for f in run.history
                             if f.get("target") == target]
            got.append(f"{target}: no finding at the end" + (f"; before: {came_and_went}" if came_and_went else ""))
            continue
        top = mine[0]
        title = str(top.get("title", "")).lower()
        ok = (top.get("layer") == expect.layer and top.get("severity") in ALARMS
              and all(word in title for word in expect.words))
        right = right and ok
        got.append(_line(top))
        if ok and isinstance(top.get("first_seen_s"), (int, float)):
            seconds.append(float(top["first_seen_s"]))
    false_alarms = [_line(f) for f in everything if f.get("target") in scenario.controls
                    and f.get("severity") in ALARMS]
    return Verdict(scenario.name, right, max(seconds) if right and seconds else None, got, false_alarms)
