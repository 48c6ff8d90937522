"""Capture probe: tcpdump writes pcap to a pipe, the header path summarises it once a second.

``tcpdump -U -w -`` does the capturing (libpcap's TPACKET_V3 ring, BPF in the
kernel, loopback seen once) and this probe only parses the pcap stream, which
keeps up with several hundred thousand packets a second where a scapy sniffer
drops half at ten thousand. Each interval yields one "capture" Sample whose
fields are ``CaptureSummary.snapshot()`` plus the capture's own health: packets
seen, dropped by the kernel (tcpdump's counters, asked for with SIGUSR1), and
the filter in use.

The snap length keeps the headers and the start of the payload that DNS, a TLS
ClientHello and an HTTP status line need, never whole payloads; the ring of
recent packets that ``export_ring`` writes keeps headers only.

Options (ProbeSpec.options, all optional): interface, filter (a BPF
expression; default ``default_filter()``), snaplen, buffer_kib, tcpdump (path),
dns_ports, handshake_timeout, dns_timeout, ring_size, dissect_budget,
immediate (bool). The target names the series; it defaults to the interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from probes.pcapstream import DEFAULT_DNS_PORTS, CaptureSummary, PcapStream
from probes.runtime import ProbeSpec, within
from probes.samples import LOCAL_HOST, JSONValue, Sample, error_sample

KIND = "capture"
DEFAULT_INTERFACE = "any"
#: Enough for Ethernet + IPv6 + TCP options + a DNS message, a TLS ClientHello's
#: SNI or an HTTP status line; payloads beyond it are never captured.
DEFAULT_SNAPLEN = 512
DEFAULT_BUFFER_KIB = 32768
PIPE_SIZE = 1 << 20
#: Pause this long after a read smaller than COALESCE_BELOW bytes, so the next read carries more packets.
COALESCE_S = 0.004
COALESCE_BELOW = 1 << 17

ERROR_PERMISSION = "permission"
ERROR_NO_TOOL = "no-tcpdump"
ERROR_TCPDUMP = "tcpdump"

CAP_NET_RAW = 13

#: Summaries of running captures by (host, target), so the console can export a ring.
SESSIONS: dict[tuple[str, str], CaptureSummary] = {}


def default_filter(env: Mapping[str, str] | None = None) -> str:
    """A BPF filter that leaves out the console's own SSH traffic.

    ``not port 22`` covers the usual case; when this console itself runs over
    SSH (SSH_CONNECTION is set) its session is left out by its exact ports too,
    whatever port sshd listens on.
    """
    env = os.environ if env is None else env
    parts = ["not port 22"]
    conn = env.get("SSH_CONNECTION", "").split()
    if len(conn) == 4:
        client_ip, client_port, _server_ip, server_port = conn
        try:
            ipaddress.ip_address(client_ip)
            cport, sport = int(client_port), int(server_port)
        except ValueError:
            return parts[0]
        if 0 < cport < 65536 and 0 < sport < 65536:
            parts.append(f"not (host {client_ip} and tcp port {cport} and tcp port {sport})")
    return " and ".join(parts)


@dataclass
class CaptureOptions:
    interface: str = DEFAULT_INTERFACE
    bpf: str = field(default_factory=default_filter)
    snaplen: int = DEFAULT_SNAPLEN
    buffer_kib: int = DEFAULT_BUFFER_KIB
    tcpdump: str = "tcpdump"
    dns_ports: tuple[int, ...] = DEFAULT_DNS_PORTS
    handshake_timeout: float = 3.0
    dns_timeout: float = 3.0
    ring_size: int = 1000
    dissect_budget: int = 1000
    immediate: bool = False
    interval: float = 1.0

    @classmethod
    def from_spec(cls, spec: ProbeSpec) -> CaptureOptions:
        o: dict[str, Any] = dict(spec.options)
        opts = cls(interval=spec.interval if spec.interval > 0 else 1.0)
        if isinstance(o.get("interface"), str) and o["interface"]:
            opts.interface = o["interface"]
        if isinstance(o.get("filter"), str):
            opts.bpf = o["filter"].strip()
        for name in ("snaplen", "buffer_kib", "ring_size", "dissect_budget"):
            if isinstance(o.get(name), int) and not isinstance(o.get(name), bool):
                setattr(opts, name, int(o[name]))
        for name in ("handshake_timeout", "dns_timeout"):
            if isinstance(o.get(name), (int, float)) and not isinstance(o.get(name), bool):
                setattr(opts, name, float(o[name]))
        if isinstance(o.get("tcpdump"), str) and o["tcpdump"]:
            opts.tcpdump = o["tcpdump"]
        if isinstance(o.get("dns_ports"), list):
            opts.dns_ports = tuple(int(p) for p in o["dns_ports"] if isinstance(p, int))
        if isinstance(o.get("immediate"), bool):
            opts.immediate = o["immediate"]
        return opts

    def command(self, tcpdump_path: str) -> list[str]:
        cmd = [tcpdump_path, "-i", self.interface, "-s", str(self.snaplen), "-B", str(self.buffer_kib),
               "-n", "-U", "-w", "-"]
        if self.immediate:
            cmd.append("--immediate-mode")
        if self.bpf:
            cmd += ["--", self.bpf]  # "--": a filter typed as "-r FILE" must not become an option
        return cmd


def capture_spec(interface: str = DEFAULT_INTERFACE, bpf: str | None = None, **options: JSONValue) -> ProbeSpec:
    """The ProbeSpec for a capture on ``interface`` with ``bpf`` (None: the default filter)."""
    opts: dict[str, JSONValue] = {"interface": interface, **options}
    if bpf is not None:
        opts["filter"] = bpf
    return ProbeSpec(kind=KIND, target=interface, interval=1.0, timeout=5.0, options=opts)


def interface_names() -> list[str]:
    """This host's network interfaces (what ``-i`` may name), plus tcpdump's "any"."""
    try:
        return ["any", *sorted(name for _, name in socket.if_nameindex())]
    except OSError:
        return ["any"]


def check_interface_and_filter(interface: str, bpf: str | None, tcpdump: str = "tcpdump") -> str | None:
    """None when ``interface`` exists here and ``bpf`` compiles, else one line saying what is wrong.

    The filter is compiled with ``tcpdump -d`` (no privilege needed, nothing captured), so a typo is an
    error before any screen opens, not a capture that silently never starts.
    """
    names = interface_names()
    if interface not in names:
        return f"no interface {interface!r} on this host (there are: {', '.join(names)})"
    if not bpf:
        return None
    path = shutil.which(tcpdump)
    if path is None:
        return None  # the capture itself reports the missing tool, with how to install it
    try:
        proc = subprocess.run([path, "-d", "--", bpf], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not check the filter with {path}: {exc}"
    if proc.returncode != 0:
        reason = next((line.removeprefix("tcpdump: ") for line in proc.stderr.splitlines()
                       if line.strip() and "assuming" not in line), "it does not compile")
        return f"the BPF filter {bpf!r} does not compile: {reason}"
    return None


# --- privilege pre-flight ---------------------------------------------------
def _cap_bits(name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


def _file_has_net_raw(path: str) -> bool:
    """Whether the binary carries file capabilities granting CAP_NET_RAW (setcap ...=eip)."""
    try:
        raw = os.getxattr(path, "security.capability")
    except (OSError, AttributeError):
        return False
    if len(raw) < 12:
        return False
    magic = int.from_bytes(raw[0:4], "little")
    permitted = int.from_bytes(raw[4:8], "little")
    effective = magic & 1  # VFS_CAP_FLAGS_EFFECTIVE
    return bool(effective and permitted & (1 << CAP_NET_RAW))


def privilege_advice(tcpdump_path: str) -> str:
    return (f"run one of: sudo setcap cap_net_raw,cap_net_admin=eip {tcpdump_path}  |  "
            f"sudo warroom ...  |  capture on a remote host instead (tcpdump over SSH)")


def preflight(tcpdump: str = "tcpdump") -> tuple[str, str] | None:
    """None when capturing can work, else (error kind, message saying exactly what to run)."""
    path = shutil.which(tcpdump)
    if path is None:
        return ERROR_NO_TOOL, (f"{tcpdump} is not installed or not on PATH: install it (apt-get install tcpdump) "
                               f"or capture on a remote host that has it")
    eff = _cap_bits("CapEff")
    if eff is not None and eff & (1 << CAP_NET_RAW):
        return None
    bounding = _cap_bits("CapBnd")
    real = os.path.realpath(path)
    if _file_has_net_raw(real) and (bounding is None or bounding & (1 << CAP_NET_RAW)):
        return None
    who = f"uid {os.geteuid()}"
    return ERROR_PERMISSION, (f"packet capture needs CAP_NET_RAW, which this process ({who}) and {real} do not have; "
                              + privilege_advice(real))


# --- tcpdump's stderr -------------------------------------------------------
_STAT = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)")
_LINKTYPE = re.compile(r"link-type (\S+)")


@dataclass
class TcpdumpState:
    state: str = "starting"
    linktype: str | None = None
    captured: int | None = None
    received: int | None = None
    dropped_kernel: int | None = None
    dropped_interface: int | None = None
    errors: list[str] = field(default_factory=list)
    stats_event: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a counters line arrives (after a SIGUSR1, or at exit)."""

    def line(self, text: str) -> None:
        if "listening on" in text:
            self.state = "listening"
            m = _LINKTYPE.search(text)
            if m:
                self.linktype = m.group(1).rstrip(",")
            return
        stats = _STAT.findall(text)
        if stats:
            self.stats_event.set()
        for count, what in stats:
            value = int(count)
            if what == "captured":
                self.captured = value
            elif what == "received by filter":
                self.received = value
            elif what == "dropped by kernel":
                self.dropped_kernel = value
            else:
                self.dropped_interface = value
        if not stats and text.strip() and "data link type" not in text and "WARNING" not in text.upper():
            line = text.strip()
            # tcpdump repeats its reason in parentheses on the next line ("(No such device exists)").
            if self.errors and line.startswith("(") and line.strip("()") in self.errors[-1]:
                return
            self.errors.append(line)
            del self.errors[:-5]


async def _read_stderr(stream: asyncio.StreamReader, state: TcpdumpState) -> None:
    while True:
        line = await stream.readline()
        if not line:
            return
        state.line(line.decode("utf-8", "replace"))


class PcapPipe(asyncio.Protocol):
    """Reads tcpdump's pcap pipe straight into the parser: the capture's hot path.

    After a small read it pauses for ``coalesce`` seconds so the pipe (enlarged
    to ``PIPE_SIZE``) fills up: one wake-up then carries hundreds of packets
    instead of one, which is what keeps a Python reader ahead of ``tcpdump -U``
    at a few hundred thousand packets a second. At low rates it costs a few ms
    of latency on a summary that is shown once a second.
    """

    def __init__(self, parser: PcapStream, summary: CaptureSummary, coalesce: float = COALESCE_S) -> None:
        self.parser = parser
        self.summary = summary
        self.coalesce = coalesce
        self.transport: asyncio.ReadTransport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reads = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.summary.add_packets(self.parser.feed(data))
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.parser.error is not None:
            transport.close()  # corrupt stream: stop reading; the probe reports the parser's error
        elif len(data) < COALESCE_BELOW and self.coalesce > 0:
            transport.pause_reading()
            asyncio.get_running_loop().call_later(self.coalesce, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.parser.close()
        if not self.done.done():
            self.done.set_result(None)


def _pipe(size: int) -> tuple[int, int]:
    """A pipe enlarged to ``size`` bytes where the kernel allows (it absorbs the reader's short pauses)."""
    rfd, wfd = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(rfd, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    return rfd, wfd


def health(opts: CaptureOptions, summary: CaptureSummary, parser: PcapStream,
           state: TcpdumpState, dissector_problem: str | None = None) -> dict[str, JSONValue]:
    return {
        "dissector": dissector_problem,
        "interface": opts.interface,
        "filter": opts.bpf,
        "snaplen": opts.snaplen,
        "state": state.state,
        "linktype": state.linktype,
        "seen": summary.packets,
        "captured": state.captured,
        "received": state.received,
        "dropped_kernel": state.dropped_kernel,
        "dropped_interface": state.dropped_interface,
        "stream_error": parser.error,
    }


async def stream_capture(opts: CaptureOptions, target: str, host: str = LOCAL_HOST,
                         summary: CaptureSummary | None = None) -> AsyncGenerator[Sample, None]:
    """Run tcpdump and yield a summary Sample per interval; never raises into the caller."""
    problem = preflight(opts.tcpdump)
    if problem is not None:
        yield error_sample(KIND, target, problem[0], problem[1], host=host,
                           fields={"health": {"interface": opts.interface, "filter": opts.bpf, "state": "no-privilege"
                                              if problem[0] == ERROR_PERMISSION else "no-tcpdump"}})
        return
    tcpdump_path = shutil.which(opts.tcpdump) or opts.tcpdump
    dissector_problem: str | None = None
    try:
        from probes import dissect  # keeps scapy out of the import of this module

        await asyncio.to_thread(dissect.preload)
        dissector: Any = dissect.ScapyDissector()
    except Exception as exc:  # without scapy the header path still counts everything; health says so
        dissector = None
        dissector_problem = f"scapy unavailable, so DNS names, TLS SNI and HTTP hosts show as '?': {exc}"
    if summary is None:
        summary = CaptureSummary(dns_ports=opts.dns_ports, handshake_timeout=opts.handshake_timeout,
                                 dns_timeout=opts.dns_timeout, ring_size=opts.ring_size,
                                 dissect_budget=opts.dissect_budget, dissector=dissector)
    parser = PcapStream()
    state = TcpdumpState()
    rfd, wfd = _pipe(PIPE_SIZE)
    try:
        proc = await asyncio.create_subprocess_exec(
            *opts.command(tcpdump_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=wfd, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        os.close(rfd)
        yield error_sample(KIND, target, ERROR_TCPDUMP, f"could not start {tcpdump_path}: {exc}", host=host)
        return
    finally:
        os.close(wfd)  # tcpdump holds the write end now; ours would keep the pipe open after it exits
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    pipe_transport, pipe = await loop.connect_read_pipe(lambda: PcapPipe(parser, summary),
                                                        os.fdopen(rfd, "rb", buffering=0))
    SESSIONS[(host, target)] = summary
    err_task = asyncio.create_task(_read_stderr(proc.stderr, state))
    pcap_task = asyncio.ensure_future(pipe.done)
    try:
        next_at = time.monotonic() + opts.interval
        while True:
            done, _ = await asyncio.wait({pcap_task}, timeout=max(0.0, next_at - time.monotonic()))
            next_at += opts.interval
            if done and summary.packets == 0 and state.state != "listening":
                break  # tcpdump failed at start: only its error is worth a Sample
            if proc.returncode is None and not done and state.state == "listening":
                # Only once listening: before tcpdump installs its handler, SIGUSR1 would kill it.
                state.stats_event.clear()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGUSR1)  # tcpdump prints its counters on stderr
                with contextlib.suppress(asyncio.TimeoutError):
                    await within(state.stats_event.wait(), 0.2)
            fields = summary.snapshot()
            fields["health"] = health(opts, summary, parser, state, dissector_problem)
            yield Sample(kind=KIND, target=target, ts=time.time(), host=host, fields=fields)
            if done:
                break
        # The pipe closed: tcpdump exited (bad filter, interface gone, killed) or the stream is corrupt.
        with contextlib.suppress(asyncio.TimeoutError):
            await within(proc.wait(), 2.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await within(err_task, 1.0)
        text = "; ".join(state.errors) or parser.error or f"tcpdump exited with status {proc.returncode}"
        kind = ERROR_PERMISSION if "permission" in text.lower() or "not permitted" in text.lower() else ERROR_TCPDUMP
        if kind == ERROR_PERMISSION:
            text += "; " + privilege_advice(tcpdump_path)
        state.state = "stopped"
        yield error_sample(KIND, target, kind, text, host=host,
                           fields={"health": health(opts, summary, parser, state, dissector_problem)})
    finally:
        if SESSIONS.get((host, target)) is summary:
            del SESSIONS[(host, target)]
        pipe_transport.close()
        pcap_task.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await within(proc.wait(), 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        err_task.cancel()
        await asyncio.gather(pcap_task, err_task, return_exceptions=True)


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    opts = CaptureOptions.from_spec(spec)
    return stream_capture(opts, spec.target or opts.interface, host)


def export_path(target: str, directory: str = ".", now: float | None = None) -> str:
    """A file name for an export of ``target``'s ring: warroom-<target>-<UTC time>.pcap in ``directory``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", target) or "capture"
    return os.path.join(directory, f"warroom-{safe}-{stamp}.pcap")


def export_ring(target: str, path: str, host: str = LOCAL_HOST) -> int:
    """Write the running capture's header ring to ``path`` (blocking: call in a thread).

    Raises KeyError when no capture of that target runs on that host.
    """
    return SESSIONS[(host, target)].export_ring(path)


# --- config and remote byte streams -----------------------------------------
CONFIG_KEYS = {"interface": str, "filter": str, "snaplen": int, "buffer_kib": int, "ring_size": int,
               "dns_ports": list, "handshake_timeout": (int, float), "dns_timeout": (int, float),
               "dissect_budget": int, "tcpdump": str, "immediate": bool, "enabled": bool}


def spec_from_config(section: Mapping[str, Any]) -> ProbeSpec:
    """The capture ProbeSpec from the config file's [capture] section (a dict); ValueError says what is wrong.

    Keys (all optional): interface, filter, snaplen, buffer_kib, ring_size, dns_ports, handshake_timeout,
    dns_timeout, dissect_budget, tcpdump, immediate, enabled (the console's own switch).
    """
    options: dict[str, JSONValue] = {}
    for key, value in section.items():
        expected = CONFIG_KEYS.get(key)
        if expected is None:
            raise ValueError(f"[capture] {key}: unknown setting (known: {', '.join(sorted(CONFIG_KEYS))})")
        if isinstance(value, bool) and expected is not bool:
            raise ValueError(f"[capture] {key}: expected a {_type_name(expected)}, got true/false")
        if not isinstance(value, expected):  # type: ignore[arg-type]
            raise ValueError(f"[capture] {key}: expected a {_type_name(expected)}, got {type(value).__name__}")
        if key == "dns_ports" and not all(isinstance(p, int) and 0 < p < 65536 for p in value):
            raise ValueError("[capture] dns_ports: expected a list of port numbers 1-65535")
        if key in ("snaplen", "buffer_kib") and value <= 0:
            raise ValueError(f"[capture] {key}: must be positive")
        if key != "enabled":
            options[key] = value
    interface = str(options.pop("interface", DEFAULT_INTERFACE))
    bpf = options.pop("filter", None)
    return capture_spec(interface, bpf if isinstance(bpf, str) else None, **options)


def _type_name(expected: Any) -> str:
    if isinstance(expected, tuple):
        return "number"
    return {str: "string", int: "whole number", list: "list", bool: "true/false"}.get(expected, str(expected))


async def stream_from_reader(read: Any, opts: CaptureOptions, target: str, host: str = LOCAL_HOST,
                             state: TcpdumpState | None = None) -> AsyncGenerator[Sample, None]:
    """Summaries of a pcap byte stream read with ``await read(n)`` (an SSH channel's stdout, a pipe, a file).

    This is how a capture on a remote host works: the SSH side runs ``opts.command("tcpdump")`` there and
    passes its stdout's ``read``; feeding that host's tcpdump stderr lines to ``state.line()`` fills the
    health counters. Yields a Sample per ``opts.interval`` and a final one when the stream ends (an error
    Sample when it ended inside a record or was not pcap). Never raises.
    """
    state = state or TcpdumpState(state="streaming")
    summary = CaptureSummary(dns_ports=opts.dns_ports, handshake_timeout=opts.handshake_timeout,
                       dns_timeout=opts.dns_timeout, ring_size=opts.ring_size,
                       dissect_budget=opts.dissect_budget, dissector=_scapy_dissector())
    parser = PcapStream()
    SESSIONS[(host, target)] = summary

    async def pump() -> None:
        while True:
            chunk = await read(PIPE_SIZE)
            if not chunk:
                parser.close()
                return
            summary.add_packets(parser.feed(chunk if isinstance(chunk, bytes) else bytes(chunk)))
            if parser.error is not None:
                return

    task = asyncio.ensure_future(pump())
    try:
        next_at = time.monotonic() + opts.interval
        while True:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, next_at - time.monotonic()))
            next_at += opts.interval
            if done:
                break
            fields = summary.snapshot()
            fields["health"] = health(opts, summary, parser, state)
            yield Sample(kind=KIND, target=target, ts=time.time(), host=host, fields=fields)
        problem = None
        try:
            task.result()
        except Exception as exc:  # the channel broke: report it with what was read
            problem = f"{type(exc).__name__}: {exc}"
        fields = summary.snapshot(final=True)
        state.state = "ended"
        fields["health"] = health(opts, summary, parser, state)
        problem = problem or parser.error
        if problem:
            yield error_sample(KIND, target, ERROR_TCPDUMP, problem, host=host, fields=fields)
        else:
            yield Sample(kind=KIND, target=target, ts=time.time(), host=host, fields=fields)
    finally:
        task.cancel()
        if SESSIONS.get((host, target)) is summary:
            del SESSIONS[(host, target)]


def _scapy_dissector() -> Any:
    try:
        from probes import dissect  # scapy only when a capture really runs

        return dissect.ScapyDissector()
    except Exception:  # without scapy the header path still counts everything
        return None
