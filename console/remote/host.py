"""Probes on production hosts over SSH: connection, host keys, the agent session, reconnects.

``RemoteHost(host, specs, settings).stream()`` is an endless Sample stream for
the hub (``hub.add_stream(f"ssh:{name}", remote.stream, kind="host_status")``):
it connects with asyncssh (honouring ~/.ssh/config, the SSH agent and
known_hosts), ships the agent (console/remote/payload.py), relays its Samples,
and reports its own state as "host_status" Samples so that the state is
recorded and replayed like any other evidence.

Host keys are checked strictly: an unknown or changed key stops that host with
one line naming the key's fingerprint and how to accept it; only
``accept_new_host_keys`` trusts (and records) keys of hosts never seen before,
and a changed key is never accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shlex
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # cryptography deprecates DSA (51.0 here warns), and asyncssh names its DSA classes as it is imported: ten
    # lines of a library's warning on the stderr of every console, `--json` and `check` using a host.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

from console.remote.payload import NO_PYTHON_MARK, agent_command, build_payload, posix_command, request_line
from console.settings.hosts import HostConfig, HostConfigError, SSHSettings, parse_host_arg
from probes.agent import AGENT_VERSION, DELTA_KINDS, ERROR_UNAVAILABLE
from probes.runtime import ProbeSpec, within
from probes.samples import SCHEMA_VERSION, JSONValue, Sample, SampleDecodeError
from probes.snapshot_delta import DeltaError, decode_delta
from probes.ss_text import SS_COMMAND, parse_ss
from probes.targets import TargetError, is_ip_literal, parse_target

KIND_STATUS = "host_status"

# host_status states (fields["state"]); the failure ones are also the Sample's ``error``.
CONNECTING = "connecting"
CONNECTED = "connected"
RECONNECTING = "reconnecting"
AUTH_FAILED = "auth_failed"
HOST_KEY_UNKNOWN = "host_key_unknown"
HOST_KEY_CHANGED = "host_key_changed"
AGENT_FAILED = "agent_failed"
CONFIG_ERROR = "config_error"
#: States after which the host is not retried: retrying cannot fix them and may lock accounts.
TERMINAL_STATES = frozenset({AUTH_FAILED, HOST_KEY_UNKNOWN, HOST_KEY_CHANGED, AGENT_FAILED, CONFIG_ERROR})

#: Pure-Python packages a probe kind needs shipped with the agent.
#: tcp, icmp and http look names up through dnspython themselves (probes/resolve.py); http speaks
#: HTTP/1.1 through h11 (~90 KB, rarely on a host), whatever its target.
SHIP_FOR_KIND: dict[str, tuple[str, ...]] = {"dns": ("dns",), "layers": ("dns",), "tcp": ("dns",), "icmp": ("dns",),
                                             "http": ("h11", "dns")}
#: The packages only a name lookup needs.
LOOKUP_PACKAGES = frozenset({"dns"})
#: Kinds that need dnspython only to look their target's name up: a target that is an IP address
#: needs no lookup (probes/resolve.py imports nothing for it), so it does not ship the ~350 KB of
#: dnspython, which was most of a fresh host's payload and of the console's CPU when 20 hosts start at
#: once. (An http redirect to a name then resolves through getaddrinfo, resolve.py's bounded fallback.)
LOOKUP_ONLY_KINDS = frozenset({"tcp", "icmp", "http"})

_SS_END = "warroom-ss-end"


class RemoteError(Exception):
    """A failure that ends a session; ``state`` says which host_status to report."""

    def __init__(self, state: str, message: str, fields: dict[str, JSONValue] | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.fields = fields or {}


# ---------------------------------------------------------------- host keys

def _known_hosts_host(host: str, port: int | None) -> str:
    """How OpenSSH names a host in known_hosts: bare on port 22, else [host]:port."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def _ssh_hint(host: str, port: int | None) -> str:
    return f"ssh -p {port} {shlex.quote(host)}" if port not in (None, 22) else f"ssh {shlex.quote(host)}"


@dataclass
class HostKeyChecker:
    """Strict host-key policy, applied by asyncssh's validate_host_public_key hook.

    asyncssh checks the keys it finds in ``known``; only a key it did not find
    reaches ``validate``, which tells "unknown host" from "changed key" and
    records the fingerprint for the one-line message.
    """

    known: asyncssh.SSHKnownHosts
    path: Path
    accept_new: bool
    problem: RemoteError | None = None
    accepted: str | None = None

    @classmethod
    def load(cls, path: Path, accept_new: bool, also_read: Sequence[Path] = ()) -> HostKeyChecker:
        """Trust what ``path`` and the system-wide files in ``also_read`` list; record new keys in ``path``."""
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in (path, *also_read) if p.is_file()]
        return cls(known=asyncssh.import_known_hosts("\n".join(texts)), path=path, accept_new=accept_new)

    def validate(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        name = _known_hosts_host(host, port)
        fingerprint = key.get_fingerprint("sha256")
        algorithm = key.get_algorithm()
        trusted = self.known.match(host, addr, port)[0]
        if any(k.public_data == key.public_data for k in trusted):
            # Recorded for this host, but in a form asyncssh's own lookup missed (OpenSSH writes port 22
            # bare; "[host]:22" is legal too): the key is the one on record, so it is trusted.
            return True
        if trusted:
            old = ", ".join(k.get_fingerprint("sha256") for k in trusted)
            self.problem = RemoteError(
                HOST_KEY_CHANGED,
                f"host key for {name} CHANGED: it now offers {algorithm} {fingerprint} but {self.path} "
                f"has {old}; this may be an attack, so it was refused. If the host was rebuilt, remove the old "
                f"key with: ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(self.path))}",
                {"fingerprint": fingerprint, "algorithm": algorithm, "known": old})
            return False
        if self.accept_new:
            line = f"{name} {key.export_public_key('openssh').decode().strip()}\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
            self.accepted = fingerprint
            return True
        self.problem = RemoteError(
            HOST_KEY_UNKNOWN,
            f"host key for {name} is unknown: {algorithm} {fingerprint}; check it with the host's owner, then "
            f"run again with --accept-new-host-keys (or connect once with `{_ssh_hint(host, port)}`) to trust it",
            {"fingerprint": fingerprint, "algorithm": algorithm})
        return False


class _Client(asyncssh.SSHClient):
    def __init__(self, checker: HostKeyChecker) -> None:
        self.checker = checker

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return self.checker.validate(host, addr, port, key)


# ---------------------------------------------------------------- connecting

@dataclass
class Connection:
    """An open SSH connection and the jump hosts it goes through (closed together)."""

    conn: asyncssh.SSHClientConnection
    jumps: list[asyncssh.SSHClientConnection] = field(default_factory=list)
    accepted_key: str | None = None

    def close(self) -> None:
        self.conn.close()
        for jump in reversed(self.jumps):
            jump.close()

    async def wait_closed(self) -> None:
        for c in [self.conn, *self.jumps]:
            with contextlib.suppress(Exception):
                await within(c.wait_closed(), 2.0)


def _config_paths(settings: SSHSettings) -> list[str] | tuple[()]:
    if settings.ssh_config:
        return [os.path.expanduser(p) for p in settings.ssh_config]
    return ()  # asyncssh's default: ~/.ssh/config when it exists


def _resolve(host: HostConfig, settings: SSHSettings) -> asyncssh.SSHClientConnectionOptions:
    """What ~/.ssh/config says about this host (HostName, Port, User, IdentityFile, ProxyJump ...)."""
    return asyncssh.SSHClientConnectionOptions(
        config=_config_paths(settings), host=host.destination,
        port=host.port if host.port is not None else (),
        username=host.user if host.user is not None else ())


def _known_hosts_path(settings: SSHSettings, options: asyncssh.SSHClientConnectionOptions) -> Path:
    if settings.known_hosts:
        return Path(os.path.expanduser(settings.known_hosts))
    configured = options.known_hosts
    if isinstance(configured, list) and configured and isinstance(configured[0], str):
        return Path(os.path.expanduser(configured[0]))
    return Path.home() / ".ssh" / "known_hosts"


def _global_known_hosts(options: asyncssh.SSHClientConnectionOptions) -> list[Path]:
    """GlobalKnownHostsFile from the config, else OpenSSH's defaults."""
    known = options.known_hosts
    configured = [p for p in known if isinstance(p, str)][1:] if isinstance(known, list) else []
    paths = configured or ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
    return [Path(os.path.expanduser(p)) for p in paths]


def _auth_message(name: str, options: asyncssh.SSHClientConnectionOptions, exc: Exception) -> str:
    return (f"authentication to {options.username}@{name} failed ({exc}); check the user, that your key is in "
            "the host's authorized_keys and loaded (ssh-add -l) or named by IdentityFile in ~/.ssh/config")


async def connect(host: HostConfig, settings: SSHSettings) -> Connection:
    """Open an SSH connection to ``host``, through its ProxyJump hosts, checking every host key.

    Raises RemoteError (auth_failed, host_key_*) for what retrying cannot fix,
    OSError/asyncssh.Error/TimeoutError for what it may.
    """
    try:
        options = await asyncio.to_thread(_resolve, host, settings)
    except (OSError, ValueError, asyncssh.KeyImportError) as exc:
        raise RemoteError(CONFIG_ERROR, f"{host.name}: cannot use the SSH settings: {exc}") from None
    jumps: list[asyncssh.SSHClientConnection] = []
    tunnel: asyncssh.SSHClientConnection | None = None
    jump_spec = host.jump if host.jump is not None else options.tunnel
    try:
        if isinstance(jump_spec, str) and jump_spec and jump_spec.lower() != "none":
            for hop in jump_spec.split(","):
                try:
                    hop_host = parse_host_arg(hop)
                except HostConfigError as exc:
                    raise RemoteError(CONFIG_ERROR, f"{host.name}: bad ProxyJump {hop!r}: {exc}") from None
                hop_conn = await _connect_one(hop_host, settings, tunnel, label=f"jump host {hop} for {host.name}")
                jumps.append(hop_conn.conn)
                tunnel = hop_conn.conn
        one = await _connect_one(host, settings, tunnel, label=host.name, options=options)
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise
    one.jumps = jumps
    return one


async def _connect_one(host: HostConfig, settings: SSHSettings, tunnel: asyncssh.SSHClientConnection | None, *,
                       label: str, options: asyncssh.SSHClientConnectionOptions | None = None) -> Connection:
    if options is None:
        try:
            options = await asyncio.to_thread(_resolve, host, settings)
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise RemoteError(CONFIG_ERROR, f"{label}: cannot use the SSH settings: {exc}") from None
    kh_path = _known_hosts_path(settings, options)
    checker = await asyncio.to_thread(HostKeyChecker.load, kh_path, settings.accept_new_host_keys,
                                      _global_known_hosts(options))
    try:
        conn = await asyncssh.connect(
            host.destination,
            port=host.port if host.port is not None else (),
            username=host.user if host.user is not None else (),
            config=_config_paths(settings),
            tunnel=tunnel if tunnel is not None else (),
            known_hosts=checker.known,
            client_factory=lambda: _Client(checker),
            connect_timeout=settings.connect_timeout,
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=3,
            # The Sample stream is JSON lines, the same keys every second: zlib (after authentication)
            # shrinks it several times on the wire. A server that refuses it leaves the link uncompressed.
            compression_algs=("zlib@openssh.com", "none"),
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        problem = checker.problem or RemoteError(HOST_KEY_UNKNOWN, f"host key not verifiable: {exc}")
        if label != host.name:  # a jump host: say which one
            problem = RemoteError(problem.state, f"{label}: {problem}", problem.fields)
        raise problem from None
    except asyncssh.PermissionDenied as exc:
        raise RemoteError(AUTH_FAILED, _auth_message(label, options, exc)) from None
    return Connection(conn=conn, accepted_key=checker.accepted)


# ---------------------------------------------------------------- status samples

def status_sample(host: str, state: str, detail: str = "", **extra: JSONValue) -> Sample:
    fields: dict[str, JSONValue] = {"state": state, "detail": detail}
    fields.update(extra)
    failed = state in TERMINAL_STATES or state == RECONNECTING
    return Sample(kind=KIND_STATUS, target="", ts=time.time(), host=host, fields=fields,
                  error=state if failed else None, message=detail if failed else None)


# ---------------------------------------------------------------- the agent session

def _needs_lookup(spec: ProbeSpec) -> bool:
    """Whether ``spec``'s target is a name to look up (a target that does not parse counts as one)."""
    try:
        return not is_ip_literal(parse_target(spec.target).host)
    except TargetError:
        return True


def ship_for(specs: Sequence[ProbeSpec]) -> tuple[str, ...]:
    """The pure-Python packages an agent running ``specs`` needs shipped with it."""
    wanted: list[str] = []
    for spec in specs:
        no_lookup = spec.kind in LOOKUP_ONLY_KINDS and not _needs_lookup(spec)
        for pkg in SHIP_FOR_KIND.get(spec.kind, ()):
            if pkg not in wanted and not (no_lookup and pkg in LOOKUP_PACKAGES):
                wanted.append(pkg)
    return tuple(wanted)


class RemoteHost:
    """One remote vantage point: keeps a session to ``host`` running and yields its Samples.

    ``stream()`` never raises and never ends on its own: failures become
    host_status Samples, link drops reconnect with exponential backoff and
    jitter, and a terminal state (auth failed, host key unknown/changed, agent
    unusable) parks the host until the stream is cancelled.
    """

    def __init__(self, host: HostConfig, specs: Sequence[ProbeSpec], settings: SSHSettings | None = None) -> None:
        self.host = host
        self.name = host.name
        self.specs = list(specs)
        self.settings = settings or SSHSettings()
        self.state = CONNECTING
        self.connection: Connection | None = None
        self.connects = 0
        self._agent_proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._shipped: frozenset[str] = frozenset()
        """The probe kinds and packages the running agent was shipped with (a new one needs a new agent)."""
        self._respawn = False
        """Set when the specs need modules the running agent lacks: start a new one on the same connection."""
        self._snapshots: dict[tuple[str, str, str], Sample] = {}
        """The last socket table / pools Sample per series: what the agent's next delta line changes."""
        self.bytes_received = 0
        """Bytes of agent output read from the channel (after SSH decompression): what the link carried."""

    def _status(self, state: str, detail: str = "", **extra: JSONValue) -> Sample:
        self.state = state
        return status_sample(self.name, state, detail, **extra)

    async def stream(self) -> AsyncIterator[Sample]:
        delay = self.settings.backoff_start
        attempt = 0
        while True:
            attempt += 1
            yield self._status(CONNECTING, f"connecting to {self.host.destination}", attempt=attempt)
            failure = ""
            self._warm_payload()
            try:
                self.connection = await connect(self.host, self.settings)
                self.connects += 1
                async for sample in self._session(self.connection):
                    if sample.kind == KIND_STATUS and sample.fields.get("state") == CONNECTED:
                        delay = self.settings.backoff_start
                        attempt = 0
                    yield sample
                failure = "the session ended"
            except RemoteError as exc:
                if exc.state in TERMINAL_STATES:
                    if self.connection is not None:
                        self.connection.close()
                        self.connection = None
                    yield self._status(exc.state, str(exc), **exc.fields)
                    await asyncio.Event().wait()  # parked: only cancellation ends us
                failure = str(exc)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncssh.Error, asyncio.TimeoutError, EOFError) as exc:
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except Exception as exc:  # never raise into the hub
                failure = f"unexpected {type(exc).__name__}: {exc}"
            finally:
                if self.connection is not None:
                    self.connection.close()
                    self.connection = None
            wait = delay * random.uniform(0.8, 1.2)  # jitter: hosts behind one dead link do not retry in step
            yield self._status(RECONNECTING, f"{failure}; reconnecting in {wait:.0f} s", retry_in=round(wait, 1),
                               attempt=attempt)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.settings.backoff_max)

    def _payload_args(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """build_payload's arguments for the current specs: (packages to ship, probe kinds)."""
        return ship_for(self.specs), tuple(sorted({spec.kind for spec in self.specs}))

    def _warm_payload(self) -> None:
        """Start zipping the agent in a worker thread now, so the SSH handshake and the zip overlap on
        a cold host (40-60 ms of zlib for dnspython and h11); _agent_session picks the zip up from
        build_payload's cache, or waits on its lock while it is still being built."""
        ship, kinds = self._payload_args()

        def build() -> None:
            try:
                build_payload(ship, kinds)
            except Exception:  # _agent_session builds it again and reports the error
                pass

        asyncio.get_running_loop().run_in_executor(None, build)

    async def _session(self, connection: Connection) -> AsyncIterator[Sample]:
        """Agents on one connection: a new one when the specs need probes the running one was not shipped."""
        while True:
            self._respawn = False
            async for sample in self._agent_session(connection):
                yield sample
            if not self._respawn:
                return

    async def _agent_session(self, connection: Connection) -> AsyncIterator[Sample]:
        ship, kinds = self._payload_args()
        # Only what these probes need travels (console/remote/payload.py); zipping it takes a while, off the loop.
        payload = await asyncio.to_thread(build_payload, ship, kinds)
        command = agent_command(len(payload), self.host.python, kinds)
        proc = await connection.conn.create_process(command, encoding=None)
        self._shipped = frozenset(kinds) | frozenset(f"package:{name}" for name in ship)
        self._snapshots.clear()
        try:
            proc.stdin.write(payload + request_line(self.name, self.specs,
                                                   keepalive_timeout=self.settings.agent_keepalive_timeout,
                                                   deltas=True))
            first = await within(proc.stdout.readline(), self.settings.connect_timeout)
            if first.strip() == NO_PYTHON_MARK.encode():
                proc.close()
                async for sample in self._ss_session(connection):
                    yield sample
                return
            hello = await self._decode_hello(first, proc)
            yield self._status(CONNECTED, f"agent running (python {hello.get('python')}, pid {hello.get('pid')})",
                               mode="agent", python=hello.get("python"), agent_pid=hello.get("pid"),
                               accepted_key=connection.accepted_key)
            pinger = asyncio.get_running_loop().create_task(self._ping(proc))
            self._agent_proc = proc
            try:
                while True:
                    line = await within(proc.stdout.readline(), self.settings.silence_timeout)
                    self.bytes_received += len(line)
                    if not line:
                        if self._respawn:
                            return  # we closed it: its successor has the probes it lacked
                        stderr = await _stderr_text(proc)
                        raise EOFError(f"agent output ended{': ' + stderr if stderr else ''}")
                    decoded = self._decode_line(line)
                    if decoded is not None:
                        yield decoded
            finally:
                self._agent_proc = None
                pinger.cancel()
        finally:
            proc.close()

    async def _decode_hello(self, first: bytes, proc: asyncssh.SSHClientProcess[bytes]) -> dict[str, JSONValue]:
        if not first:
            stderr = await _stderr_text(proc)
            raise EOFError(f"the agent did not start{': ' + stderr if stderr else ''}")
        try:
            msg = json.loads(first)
        except ValueError:
            stderr = await _stderr_text(proc)
            raise RemoteError(AGENT_FAILED, f"{self.name}: unexpected output instead of the agent's hello: "
                              f"{first[:200]!r} {stderr}".strip()) from None
        if isinstance(msg, dict) and "fatal" in msg:
            raise RemoteError(AGENT_FAILED, f"{self.name}: {msg['fatal']}")
        hello = msg.get("hello") if isinstance(msg, dict) else None
        if not isinstance(hello, dict):
            raise RemoteError(AGENT_FAILED, f"{self.name}: the agent sent no hello: {first[:200]!r}")
        if hello.get("agent") != AGENT_VERSION or hello.get("schema") != SCHEMA_VERSION:
            raise RemoteError(AGENT_FAILED, f"{self.name}: version mismatch: agent protocol {hello.get('agent')}, "
                              f"schema {hello.get('schema')} on the host; this console needs {AGENT_VERSION}/"
                              f"{SCHEMA_VERSION}")
        return hello

    def _decode_line(self, line: bytes) -> Sample | None:
        try:
            msg = json.loads(line)
        except ValueError:
            return Sample(kind="agent", target="", ts=time.time(), host=self.name, error="exception",
                          message=f"undecodable line from the agent: {line[:200]!r}")
        if not isinstance(msg, dict) or "pong" in msg:
            return None
        if "fatal" in msg:
            raise RemoteError(AGENT_FAILED, f"{self.name}: {msg['fatal']}")
        if "error" in msg and "kind" not in msg:
            return Sample(kind="agent", target="", ts=time.time(), host=self.name, error="exception",
                          message=str(msg["error"]))
        if "delta" in msg and "fields" not in msg:
            return self._delta_sample(msg)
        sample = self._host_sample(msg)
        if sample.kind in DELTA_KINDS and sample.ok:
            self._snapshots[sample.series] = sample
        return sample

    def _host_sample(self, msg: dict[str, JSONValue]) -> Sample:
        try:
            sample = Sample.from_dict(msg)
        except SampleDecodeError as exc:
            return Sample(kind="agent", target="", ts=time.time(), host=self.name, error="exception",
                          message=f"bad sample from the agent: {exc}")
        if sample.host != self.name:  # the vantage point is who we asked, whatever the agent says
            sample = Sample(kind=sample.kind, target=sample.target, ts=sample.ts, fields=sample.fields,
                            host=self.name, error=sample.error, message=sample.message)
        return sample

    def _delta_sample(self, msg: dict[str, JSONValue]) -> Sample | None:
        """The whole snapshot a delta line of the agent stands for, rebuilt from the one before it."""
        series = (self.name, str(msg.get("kind", "")), str(msg.get("target", "")))
        previous = self._snapshots.get(series)
        try:
            if previous is None:
                raise DeltaError("a change to a snapshot this console does not hold")
            sample = decode_delta(previous, msg)
        except (DeltaError, KeyError, TypeError) as exc:
            # Cannot happen on an ordered channel, but never guess: ask for the next snapshots whole.
            self._snapshots.pop(series, None)
            if self._agent_proc is not None:
                self._agent_proc.stdin.write(b'{"full":true}\n')
            return Sample(kind="agent", target="", ts=time.time(), host=self.name, error="exception",
                          message=f"bad snapshot change from the agent: {exc}")
        self._snapshots[series] = sample
        return sample

    async def _ping(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        while True:
            await asyncio.sleep(self.settings.ping_interval)
            proc.stdin.write(json.dumps({"ping": time.time()}).encode() + b"\n")

    def set_specs(self, specs: Sequence[ProbeSpec]) -> None:
        """Change what runs: sent to a running agent at once, and used for every reconnect.

        (A host in ss-only mode keeps its loop; the new specs apply from the next connection.)
        """
        self.specs = list(specs)
        if self._agent_proc is None:
            return
        needed = {spec.kind for spec in self.specs} | {f"package:{name}" for name in ship_for(self.specs)}
        if needed - self._shipped:
            # The running agent was shipped without these probes (or a package they now need, dnspython for a
            # target that is a name): end it; _session starts one that has them,
            # on the same connection (no reconnect, no backoff).
            self._respawn = True
            self._agent_proc.stdin.write_eof()
            return
        line = json.dumps({"specs": [s.to_dict() for s in self.specs]}, separators=(",", ":"))
        self._agent_proc.stdin.write(line.encode() + b"\n")

    async def capture(self, *, interface: str = "any", bpf: str = "", count: int = 1000, seconds: float = 60,
                      snaplen: int = 262144) -> AsyncIterator[bytes]:
        """remote_capture() on this host's open connection (sudo as configured for the host)."""
        if self.connection is None:
            raise RemoteCaptureError(f"{self.name} is not connected ({self.state}); capture needs the SSH link")
        async for chunk in remote_capture(self.connection.conn, interface=interface, bpf=bpf, count=count,
                                          seconds=seconds, snaplen=snaplen, sudo=self.host.sudo):
            yield chunk

    async def _ss_session(self, connection: Connection) -> AsyncIterator[Sample]:
        """No python3 on the host: serve "conns" from ss, say which probes cannot run.

        One long-lived shell loop, driven by a line from us per tick, so there is
        no per-sample login; the loop ends on stdin EOF like the agent.
        """
        conns = [s for s in self.specs if s.kind == "conns"]
        yield self._status(CONNECTED, f"no {self.host.python} on the host: only connections (ss) and capture",
                           mode="ss")
        for spec in self.specs:
            if spec.kind != "conns":
                yield Sample(kind=spec.kind, target=spec.target, ts=time.time(), host=self.name,
                             error=ERROR_UNAVAILABLE,
                             message=f"probe {spec.kind} unavailable on {self.name}: no {self.host.python} on the host")
        loop_cmd = f'while IFS= read -r _; do {SS_COMMAND} 2>&1; echo "{_SS_END} $?"; done'
        proc = await connection.conn.create_process(posix_command(loop_cmd), encoding="utf-8", errors="replace")
        interval = min((s.interval for s in conns), default=self.settings.ping_interval)
        target = conns[0].target if conns else ""
        try:
            while True:
                started = time.monotonic()
                proc.stdin.write("\n")
                lines: list[str] = []
                while True:
                    line = await within(proc.stdout.readline(), self.settings.silence_timeout)
                    if not line:
                        raise EOFError("the ss loop on the host ended")
                    if line.startswith(_SS_END):
                        rc = line.split()[-1]
                        break
                    lines.append(line)
                if conns:
                    if rc == "0":
                        for sample in parse_ss("".join(lines), self.name, target=target):
                            yield sample
                    else:
                        yield Sample(kind="conns", target=target, ts=time.time(), host=self.name,
                                     error=ERROR_UNAVAILABLE if rc == "127" else "exception",
                                     message=f"ss failed on {self.name} (exit {rc}): {''.join(lines).strip()[:300]}")
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        finally:
            proc.close()


async def _stderr_text(proc: asyncssh.SSHClientProcess[bytes]) -> str:
    """Whatever the remote wrote to stderr so far (for error messages), without waiting long."""
    try:
        data = await within(proc.stderr.read(4096), 0.2)
    except (asyncio.TimeoutError, asyncssh.Error, OSError):
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text.strip()


# ---------------------------------------------------------------- remote capture

class RemoteCaptureError(Exception):
    """tcpdump on the host failed; the message keeps its stderr and says what to do."""


def capture_command(*, interface: str = "any", bpf: str = "", count: int = 1000, seconds: float = 60,
                    snaplen: int = 262144, sudo: bool = False) -> str:
    """The remote shell script for a bounded pcap stream on stdout; every user value quoted.

    tcpdump runs in its own session (setsid), bounded by packets (-c) and time
    (timeout); a watcher kills its whole process group when our stdin closes
    (console gone or link dropped). The filter excludes this SSH session using
    the host's own view of it ($SSH_CONNECTION), which stays right through NAT
    and jump hosts.
    """
    if count < 1 or seconds <= 0 or snaplen < 1:
        raise ValueError("count, seconds and snaplen must be positive")
    if not interface or any(ch.isspace() for ch in interface):
        raise ValueError(f"not an interface name: {interface!r}")
    # Whitespace is whitespace to BPF: folding newlines keeps the remote command one line.
    bpf = " ".join(bpf.split())
    user_filter = f"({bpf}) and " if bpf else ""
    tcpdump = ["tcpdump", "-U", "-w", "-", "-n", "-c", str(int(count)), "-s", str(int(snaplen)), "-i", interface]
    # sudo goes right before tcpdump, so a NOPASSWD rule for tcpdump alone is enough.
    words = " ".join(shlex.quote(w) for w in (["sudo", "-n", *tcpdump] if sudo else tcpdump))
    return posix_command("; ".join([
        "set -- $SSH_CONNECTION",
        f'f={shlex.quote(user_filter)}"not (host $1 and port $2 and host $3 and port $4)"',
        "exec 3<&0",
        f'setsid timeout -s INT {float(seconds):g} {words} "$f" </dev/null & p=$!',
        # When our stdin ends, stop the capture's whole process group.
        "( while read -r _ <&3; do :; done; kill -TERM -- -$p 2>/dev/null; kill -TERM $p 2>/dev/null ) "
        "</dev/null >/dev/null 2>&1 & w=$!",
        "wait $p; rc=$?",
        "kill $w 2>/dev/null",
        "exit $rc",
    ]))


async def remote_capture(conn: asyncssh.SSHClientConnection, *, interface: str = "any", bpf: str = "",
                         count: int = 1000, seconds: float = 60, snaplen: int = 262144,
                         sudo: bool = False) -> AsyncIterator[bytes]:
    """Raw pcap bytes from tcpdump on the host, as they arrive (feed them to a pcap stream parser).

    Ends when tcpdump stops (count or time bound reached). Raises
    RemoteCaptureError with tcpdump's own message when it failed to start
    (no privilege, bad filter, no such interface) and nothing was captured.
    """
    command = capture_command(interface=interface, bpf=bpf, count=count, seconds=seconds, snaplen=snaplen,
                              sudo=sudo)
    proc = await conn.create_process(command, encoding=None)
    got = 0
    try:
        while True:
            chunk = await proc.stdout.read(65536)
            if not chunk:
                break
            got += len(chunk)
            yield chunk
        await proc.wait_closed()
        status = proc.exit_status
        if got == 0 and status not in (0, None):
            stderr = (await proc.stderr.read()).decode("utf-8", "replace").strip()
            hint = ""
            if "permission" in stderr.lower() or "not permitted" in stderr.lower():
                hint = (" - capture needs root: run warroom as root on the host's side, or set sudo = true for "
                        "this host with a NOPASSWD sudo rule for tcpdump")
            elif "sudo" in stderr.lower():
                hint = " - sudo -n needs a NOPASSWD rule for tcpdump on the host"
            elif status == 127 or "not found" in stderr.lower():
                hint = " - install tcpdump on the host (Debian/Ubuntu: apt-get install tcpdump)"
            raise RemoteCaptureError(f"tcpdump failed (exit {status}): {stderr}{hint}")
    finally:
        proc.close()
