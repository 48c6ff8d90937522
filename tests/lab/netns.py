"""A network-namespace lab: one namespace per "remote host", reached over a veth pair.

Each :class:`Namespace` plays a remote host. It gets a /30 out of
``LAB_SUPERNET``: the root namespace holds the first address, the namespace the
second, and nothing else is routed there, so test traffic never leaves the
machine. The link can be shaped (delay, jitter, loss) and firewalled (drop
SYNs, reject with RST, ICMP unreachable, drop all) with iptables rules inside
the namespace only: the root namespace's firewall is never touched.

This kernel has no netem, so shaping is done the way that was shown to work
here: loss with ``iptables -m statistic --mode random``, delay and jitter with
an NFQUEUE whose packets ``tests/lab/delayer.py`` releases after a random delay.
Shaping and firewall rules act on packets *entering* the namespace, so the
round trip seen from the root namespace grows by exactly the configured delay.

Names are ``wr-<pid>-<n>`` so a later run can tell a namespace left behind by a
dead test process (:func:`sweep_stale`) from one a concurrent run still uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Every lab link is a /30 inside this block. It is a private range used only
#: between the root namespace and namespaces this module creates.
LAB_SUPERNET = ipaddress.IPv4Network("10.254.0.0/16")
NAME_PREFIX = "wr-"
_NAME = re.compile(r"^wr-(\d+)-(\d+)$")
_LOCK_PATH = Path("/run/lock/warroom-lab.lock")
_COUNTER = itertools.count(1)
DELAYER = Path(__file__).with_name("delayer.py")
#: The tools the lab runs; a missing one fails the test (scripts/apt.d/lab.txt installs them).
REQUIRED_TOOLS = ("ip", "iptables", "nft", "ping")


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} -> exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _wait_until_up(show: list[str], timeout: float = 5.0) -> None:
    """Wait until ``ip -o link show`` says the veth end is UP. A clean-clone CI run lost a test's first
    SYN on a new link (its connect took one retransmission, 956 ms): until the kernel's linkwatch has
    seen the carrier come up, the device still has its no-op queue, which drops what is sent."""
    deadline = time.monotonic() + timeout
    while " state UP " not in run(show).stdout:
        if time.monotonic() > deadline:
            raise LabError(f"{show[-1]} did not come up within {timeout:g} s: {run(show).stdout.strip()}")
        time.sleep(0.01)


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace_pids(name: str) -> None:
    pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def delete_namespace(name: str) -> None:
    """Kill whatever runs inside ``name`` and delete it; its veth pair goes with it."""
    _kill_namespace_pids(name)
    run(["ip", "netns", "del", name], check=False)


def sweep_stale() -> list[str]:
    """Delete lab namespaces whose creating process is gone (left by a killed test run)."""
    removed = []
    for name in list_namespaces():
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            delete_namespace(name)
            removed.append(name)
    return removed


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    """Serialise address allocation between concurrent test runs on this machine."""
    _LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(_LOCK_PATH, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _used_subnets(namespace: str | None = None) -> set[ipaddress.IPv4Network]:
    out = run(["ip", *(["-n", namespace] if namespace else []), "-4", "-o", "addr", "show"]).stdout
    used: set[ipaddress.IPv4Network] = set()
    for match in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", out):
        addr = ipaddress.IPv4Address(match.group(1))
        if addr in LAB_SUPERNET:
            used.add(ipaddress.IPv4Network(f"{addr}/30", strict=False))
    return used


@dataclass
class Namespace:
    """One lab "host": a network namespace joined to the root namespace by a veth pair."""

    name: str
    host_if: str
    """The root namespace's end of the veth pair."""
    host_addr: str
    """The root namespace's address on the link (what the namespace sees as its peer)."""
    addr: str
    """The namespace's address: the one tests probe."""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    shaping: dict[str, float] | None = None
    _queue_num: int = 0
    _delayer: subprocess.Popen[bytes] | None = None

    # -- running things inside ---------------------------------------------------------------
    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*argv), check=check, timeout=timeout)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the namespace; it is stopped when the namespace closes."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(*argv), start_new_session=True, **kwargs)  # type: ignore[call-overload]
        self.processes.append(proc)
        return proc

    def python(self, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Run this interpreter inside the namespace with the repo importable."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        kwargs.setdefault("env", env)
        return self.popen([sys.executable, *args], **kwargs)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 3.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        if proc in self.processes:
            self.processes.remove(proc)

    def sysctl(self, key: str, value: str) -> None:
        """Set a per-namespace sysctl (for example net.ipv4.ping_group_range) in this namespace only."""
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    # -- firewall ------------------------------------------------------------------------------
    def iptables(self, *args: str) -> None:
        self.run("iptables", "-w", "5", *args)

    def _ensure_chains(self) -> None:
        # Two chains hooked into INPUT from the link only: firewall first (a dropped SYN is
        # dropped whatever the shaping), then shaping. Loopback inside stays untouched.
        existing = self.run("iptables", "-S").stdout
        for chain in ("WR_FW", "WR_SHAPE"):
            if f"-N {chain}" not in existing:
                self.iptables("-N", chain)
                self.iptables("-A", "INPUT", "-i", "eth0", "-j", chain)

    def drop_syn(self, port: int) -> None:
        """SYNs to ``port`` vanish: connects time out (a silent firewall, a dead host)."""
        self._ensure_chains()
        self.iptables("-A", "WR_FW", "-p", "tcp", "--dport", str(port), "--syn", "-j", "DROP")

    def drop_syn_nft(self, port: int) -> None:
        """The same as :meth:`drop_syn`, written as an nftables rule (both tools are in use)."""
        self.run("nft", "add", "table", "inet", "wrlab")
        self.run("nft", "add", "chain", "inet", "wrlab", "input",
                 "{ type filter hook input priority -10 ; policy accept ; }")
        self.run("nft", "add", "rule", "inet", "wrlab", "input", "iifname", "eth0", "tcp", "dport", str(port),
                 "tcp", "flags", "&", "(syn|ack)", "==", "syn", "drop")

    def reject_rst(self, port: int) -> None:
        """SYNs to ``port`` get a TCP RST: connects are refused (a rejecting firewall)."""
        self._ensure_chains()
        self.iptables("-A", "WR_FW", "-p", "tcp", "--dport", str(port), "--syn",
                      "-j", "REJECT", "--reject-with", "tcp-reset")

    def reject_unreachable(self, port: int | None = None) -> None:
        """Answer with ICMP host-unreachable (to one port's SYNs, or to everything)."""
        self._ensure_chains()
        match = ["-p", "tcp", "--dport", str(port)] if port is not None else []
        self.iptables("-A", "WR_FW", *match, "-j", "REJECT", "--reject-with", "icmp-host-unreachable")

    def reject_local_echo_unreachable(self) -> None:
        """Answer echo requests the namespace sends to itself with ICMP host-unreachable.

        For probes run inside the namespace (tests/lab/probe_runner.py) and
        aimed at its own address: the kernel sends them a real ICMP error, as a
        router on the way would, on the loopback only.
        """
        self.iptables("-I", "INPUT", "-i", "lo", "-p", "icmp", "--icmp-type", "echo-request",
                      "-j", "REJECT", "--reject-with", "icmp-host-unreachable")

    def reset_after_handshake(self, port: int) -> None:
        """Let the handshake's SYN in but answer the client's first bare ACK with RST.

        The client's connect() succeeds, then the connection is reset at once:
        what a middlebox that kills sessions (or a server that accepts and aborts)
        looks like from outside. A listener must exist on ``port``.
        """
        self._ensure_chains()
        self.iptables("-A", "WR_FW", "-p", "tcp", "--dport", str(port), "--tcp-flags", "SYN,ACK,FIN,RST", "ACK",
                      "-j", "REJECT", "--reject-with", "tcp-reset")

    def reset_some(self, port: int, share: float) -> None:
        """Reset that share of the connections to ``port`` right after their handshake (a NAT or
        firewall on the way that kills some sessions); the others go through untouched."""
        self._ensure_chains()
        self.iptables("-A", "WR_FW", "-p", "tcp", "--dport", str(port), "--tcp-flags", "SYN,ACK,FIN,RST", "ACK",
                      "-m", "conntrack", "--ctstate", "ESTABLISHED", "-m", "statistic", "--mode", "random",
                      "--probability", f"{share:.6f}", "-j", "REJECT", "--reject-with", "tcp-reset")

    def drop_all(self) -> None:
        """Every packet from the link is dropped: TCP times out, ICMP echo gets no reply."""
        self._ensure_chains()
        self.iptables("-A", "WR_FW", "-j", "DROP")

    def clear_firewall(self) -> None:
        self._ensure_chains()
        self.iptables("-F", "WR_FW")
        self.run("nft", "delete", "table", "inet", "wrlab", check=False)

    # -- shaping -------------------------------------------------------------------------------
    def shape(self, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss: float = 0.0, *,
              seed: int | None = None, ready_timeout: float = 10.0, loss_every: int | None = None) -> None:
        """Shape the link into the namespace: each packet is lost with probability ``loss``,
        else held for a uniform random time in [delay - jitter, delay + jitter] ms.

        ``loss_every=N`` loses exactly every Nth packet instead (a loss rate of 1/N without the
        luck of the draw: a short test sees the loss it was promised).

        Uniform jitter is what netem does without a distribution table; its
        standard deviation is jitter / sqrt(3) and its RFC 3550 jitter (mean
        |difference| of consecutive delays) 2 * jitter / 3.
        """
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss is a probability in [0, 1)")
        if jitter_ms > delay_ms:
            raise ValueError("jitter cannot exceed delay (a packet cannot leave before it came)")
        self.clear_shaping()
        self._ensure_chains()
        if loss_every:
            self.iptables("-A", "WR_SHAPE", "-m", "statistic", "--mode", "nth", "--every", str(loss_every),
                          "--packet", "0", "-j", "DROP")
            loss = 1.0 / loss_every
        elif loss > 0:
            self.iptables("-A", "WR_SHAPE", "-m", "statistic", "--mode", "random", "--probability", f"{loss:.6f}",
                          "-j", "DROP")
        if delay_ms > 0:
            args = [str(DELAYER), "--queue", str(self._queue_num), "--delay-ms", str(delay_ms),
                    "--jitter-ms", str(jitter_ms)]
            if seed is not None:
                args += ["--seed", str(seed)]
            proc = self.python(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            line = _read_line(proc, ready_timeout)
            if line != "ready":
                err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None and proc.stderr else ""
                self.stop(proc)
                raise LabError(f"delayer did not start (got {line!r}): {err.strip()}")
            self._delayer = proc
            # No --queue-bypass: if the delayer dies, packets stop instead of silently arriving undelayed.
            self.iptables("-A", "WR_SHAPE", "-j", "NFQUEUE", "--queue-num", str(self._queue_num))
        self.shaping = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss}

    def clear_shaping(self) -> None:
        self._ensure_chains()
        self.iptables("-F", "WR_SHAPE")
        delayer = self._delayer
        if delayer is not None:
            self.stop(delayer)
            self._delayer = None
        self.shaping = None

    # -- servers ---------------------------------------------------------------------------------
    def tcp_listener(self, *ports: int, abort_after_ms: float | None = None) -> subprocess.Popen[bytes]:
        """One process listening on each of ``ports`` inside the namespace.

        It accepts and closes each connection; with ``abort_after_ms`` it waits
        that long and then aborts it with RST (SO_LINGER 0), like a server that
        accepts and then gives up on the client.
        """
        if abort_after_ms is None:
            close = "conn.close()"
        else:
            close = (f"time.sleep({abort_after_ms / 1000.0!r}); "
                     "conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); conn.close()")
        code = ("import selectors, socket, struct, time\n"
                "sel = selectors.DefaultSelector()\n"
                f"for port in {list(ports)!r}:\n"
                "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "    s.bind(('0.0.0.0', port)); s.listen(512); sel.register(s, selectors.EVENT_READ)\n"
                "print('ready', flush=True)\n"
                "while True:\n"
                "    for key, _ in sel.select():\n"
                f"        conn, _ = key.fileobj.accept(); {close}\n")
        proc = self.python(["-c", code], stdout=subprocess.PIPE)
        if _read_line(proc, 10.0) != "ready":
            self.stop(proc)
            raise LabError(f"tcp listener on {self.name} ports {ports} did not start")
        return proc

    def close(self) -> None:
        for proc in list(self.processes):
            with contextlib.suppress(Exception):
                self.stop(proc)
        delete_namespace(self.name)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line of ``proc`` within ``timeout`` seconds ("" if none came)."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline().decode(errors="replace").strip()


class Lab:
    """Creates namespaces with unique names and removes every one of them on close()."""

    def __init__(self) -> None:
        self.namespaces: list[Namespace] = []

    def namespace(self, peer: Namespace | None = None) -> Namespace:
        """A new namespace linked to the root namespace, or with ``peer`` to that namespace instead.

        With a peer the link's other end (``host_if``, ``host_addr``) lives inside ``peer``: a
        client namespace reaches its servers directly, and the root namespace sees none of it.
        """
        missing = missing_tools()
        if missing:
            raise LabError(f"lab tools missing: {', '.join(missing)} (run scripts/install-test-deps.sh)")
        pid = os.getpid()
        with _allocation_lock():
            # A process-wide counter: names are never reused within a run, because the
            # kernel tears a deleted namespace's veth down asynchronously.
            n = next(_COUNTER)
            name = f"{NAME_PREFIX}{pid}-{n}"
            host_if = f"wr{pid}x{n}"[:15]
            used = _used_subnets() | (_used_subnets(peer.name) if peer is not None else set())
            subnet = next((s for s in LAB_SUPERNET.subnets(new_prefix=30) if s not in used), None)
            if subnet is None:
                raise LabError(f"no free /30 left in {LAB_SUPERNET}")
            host_addr, ns_addr = (str(a) for a in subnet.hosts())
            ns = Namespace(name=name, host_if=host_if, host_addr=host_addr, addr=ns_addr)
            near = peer.argv if peer is not None else (lambda *argv: list(argv))
            try:
                run(["ip", "netns", "add", name])
                self.namespaces.append(ns)
                run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", name])
                if peer is not None:
                    run(["ip", "link", "set", host_if, "netns", peer.name])
                run(near("ip", "addr", "add", f"{host_addr}/30", "dev", host_if))
                run(near("ip", "link", "set", host_if, "up"))
                ns.run("ip", "addr", "add", f"{ns_addr}/30", "dev", "eth0")
                ns.run("ip", "link", "set", "eth0", "up")
                ns.run("ip", "link", "set", "lo", "up")
                # Only the link's own /30 is routed: a namespace cannot reach anything else.
                _wait_until_up(near("ip", "-o", "link", "show", "dev", host_if))
                _wait_until_up(ns.argv("ip", "-o", "link", "show", "dev", "eth0"))
            except Exception:
                ns.close()
                self.namespaces.remove(ns)
                raise
        return ns

    def close(self) -> None:
        while self.namespaces:
            self.namespaces.pop().close()
