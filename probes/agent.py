"""The remote agent: runs the probes it is asked for and prints one JSON Sample per line.

The console starts it over SSH with a short ``python3 -c`` bootstrap (see
``BOOTSTRAP``) that reads a zip of this package from stdin into an anonymous
memory file and imports from there, so nothing is written to the host's disk.
After the zip, stdin carries JSON lines from the console:

1. the request: ``{"agent": AGENT_VERSION, "schema": SCHEMA_VERSION, "host": NAME,
   "specs": [ProbeSpec...], "keepalive_timeout": S, "max_lifetime": S|null, "deltas": BOOL}``
2. then any number of ``{"ping": T}`` (answered with ``{"pong": T}``),
   ``{"specs": [...]}`` (replace the running probes), ``{"full": true}``
   (send the next snapshots whole) or ``{"stop": true}``.

Stdout carries a ``{"hello": {...}}`` line first, then Samples, pongs, and a
``{"fatal": "..."}`` line when the agent cannot run at all. With ``deltas``
the snapshot kinds (the socket table ``conns_table`` and the pool groups
``pools``) come whole once, then as delta lines (probes/snapshot_delta.py, the
recorder's encoding): the changes since the previous snapshot of the series,
not the whole table every second.

Lifecycle, because a process left behind on a production host is a bug: the
agent exits on stdin EOF (the console closed the channel, crashed or the link
dropped and sshd noticed), when its parent process changes (sshd's session
process died), when no line arrived for ``keepalive_timeout`` seconds (the
link is silently gone and sshd has not noticed yet), after ``max_lifetime``
seconds if one is given, and when stdout is closed.

Runnable locally too: ``python3 -m probes.agent`` reads the request from stdin.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from probes import registry
from probes.runtime import ProbeSpec
from probes.samples import SCHEMA_VERSION, Sample, error_sample
from probes.snapshot_delta import encode_delta

#: Bumped when the console<->agent protocol (the control lines above) changes.
AGENT_VERSION = 1

#: The error kind of a Sample for a probe the host cannot run (module or tool missing).
ERROR_UNAVAILABLE = "unavailable"

#: Seconds without any line from the console before the agent assumes the link is dead.
DEFAULT_KEEPALIVE_TIMEOUT = 30.0

#: Seconds between the watchdog's looks at its parent process (sshd's session): an agent whose
#: parent died (and whose stdin some other process still holds open) exits within this.
PARENT_CHECK_S = 2.0

#: Kinds whose Samples are snapshots sent as changes (under "deltas"): big, and mostly the same each second.
DELTA_KINDS = frozenset({"conns_table", "pools"})

#: Probes whose modules import little (the standard library, psutil): they start at once. The others
#: import dnspython, h11 or a database driver, 50-300 ms of a cold host's CPU; they start a moment
#: later and are imported in a worker thread, so the first Samples of a fresh agent do not queue behind
#: those imports and the quick probes keep their 1 s beat while they run (the thread yields the GIL).
QUICK_KINDS = frozenset({"tcp", "icmp", "system", "conns", "pools"})

#: Kinds that never speak TLS. An agent started for these alone runs without the ssl module (the
#: bootstrap's "nossl"): asyncio imports ssl only to offer TLS and does without it when a Python has
#: none, and it was ~10 ms of a fresh agent's ~80 ms of CPU here (20 hosts at once: 200 ms of two
#: cores). Specs that need TLS later need a kind outside this set, so the console starts a new agent.
TLS_FREE_KINDS = frozenset({"tcp", "icmp", "system", "conns", "pools"})
SLOW_IMPORT_DELAY_S = 0.05

#: Seconds the agent holds a line for the ones that follow it (see serve's batched_write).
BATCH_S = 0.05

#: Marker in the agent's argv so an operator (and the tests) can find it with ps.
PROCESS_MARKER = "warroom-agent"

# The bootstrap is run as ``python3 -S -c BOOTSTRAP warroom-agent NBYTES site [nossl]``. It must
# run on old Pythons long enough to say they are too old, so: no f-strings, no
# walrus. It reads exactly NBYTES of zip from fd 0 (unbuffered, so the JSON lines
# that follow stay in the pipe for the agent), puts them in a memfd and imports
# the agent from /proc/self/fd/N: zipimport reads it like a file on disk.
#
# The interpreter runs with -S, and a last argument "site" (agent_command, unless the configured python
# already says -S): the site-packages directories go on sys.path without their .pth files and
# sitecustomize being run. Those are code nobody asked to run on a production
# host, and they cost time: on the test machine site's .pth files took 30 of a cold agent's 100 ms of
# CPU. A venv's python runs site.main() as a plain start would (only site knows a venv's packages).
# (The host probes need no psutil any more, so a host without it no longer runs site.main() to look
# for one that only a .pth names: that cost every host without psutil those 30 ms and ran its .pth code.)
BOOTSTRAP = (
    "import gc,os,sys\n"
    "gc.disable()\n"
    "if sys.version_info<(3,10) or not hasattr(os,'memfd_create'):\n"
    " sys.stdout.write('{\"fatal\":\"python %s on this host is too old: the warroom agent needs 3.10+\"}\\n'"
    "%sys.version.split()[0]);sys.stdout.flush();sys.exit(3)\n"
    "f=sys.argv[3:]\n"
    "if 'nossl' in f:sys.modules['ssl']=None\n"
    "if 'site' in f:\n"
    " import site\n"
    " e=os.path.dirname(os.path.abspath(sys.executable))\n"
    " if [1 for c in (e,os.path.dirname(e)) if os.path.isfile(os.path.join(c,'pyvenv.cfg'))]:site.main()\n"
    " else:\n"
    "  d=site.getsitepackages()\n"
    "  if site.check_enableusersite():d.insert(0,site.getusersitepackages())\n"
    "  sys.path.extend([p for p in d if os.path.isdir(p) and p not in sys.path])\n"
    "n=int(sys.argv[2]);fd=os.memfd_create('warroom-agent');got=0\n"
    "while got<n:\n"
    " c=os.read(0,min(65536,n-got))\n"
    " if not c:sys.exit(4)\n"
    " os.write(fd,c);got+=len(c)\n"
    "sys.path.insert(0,'/proc/self/fd/%d'%fd)\n"
    "import runpy;runpy.run_module('probes.agent',run_name='__main__',alter_sys=True)\n"
)


class Agent:
    """Runs ProbeSpecs and writes their Samples as JSON lines until told (or forced) to stop."""

    def __init__(self, write: Callable[[bytes], None], *, host: str = "remote",
                 keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
                 max_lifetime: float | None = None, deltas: bool = False) -> None:
        self.write_raw = write
        self.deltas = deltas
        """Send snapshot kinds as changes against the previous one of their series (the console asked)."""
        self._sent: dict[tuple[str, str, str], Sample] = {}
        """The last snapshot sent per series: what the next delta is against."""
        self.host = host
        self.keepalive_timeout = keepalive_timeout
        self.max_lifetime = max_lifetime
        self.started = time.monotonic()
        self.last_input = time.monotonic()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.done = asyncio.Event()
        self.exit_reason = ""
        self.samples_written = 0

    def emit(self, obj: dict[str, Any]) -> None:
        try:
            line = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        except ValueError as exc:  # NaN or a non-JSON type from a probe: report, do not die
            line = json.dumps(error_sample(str(obj.get("kind", "agent")), str(obj.get("target", "")),
                                           "exception", f"unencodable sample: {exc}", host=self.host).to_dict())
        try:
            self.write_raw(line.encode("utf-8") + b"\n")
        except (BrokenPipeError, OSError):
            self.stop("stdout closed")

    def emit_sample(self, sample: Sample) -> None:
        self.samples_written += 1
        if self.deltas and sample.kind in DELTA_KINDS and sample.ok:
            previous = self._sent.get(sample.series)
            self._sent[sample.series] = sample
            delta = encode_delta(previous, sample) if previous is not None else None
            if delta is not None:
                self.emit(delta)
                return
        self.emit(sample.to_dict())

    def stop(self, reason: str) -> None:
        if not self.done.is_set():
            self.exit_reason = reason
            self.done.set()

    def set_specs(self, raw_specs: Any) -> None:
        """Run exactly these specs: stop the ones no longer asked for, start the new ones."""
        if not isinstance(raw_specs, list):
            self.emit({"error": "specs must be a list"})
            return
        wanted: dict[str, ProbeSpec] = {}
        for raw in raw_specs:
            try:
                spec = ProbeSpec.from_dict(raw)
            except (KeyError, ValueError, TypeError) as exc:
                self.emit_sample(error_sample("agent", str(raw)[:200], "exception", f"bad probe spec: {exc}",
                                              host=self.host))
                continue
            wanted[json.dumps(spec.to_dict(), sort_keys=True)] = spec
        for key in list(self.tasks):
            if key not in wanted:
                self.tasks.pop(key).cancel()
        for key, spec in wanted.items():
            if key not in self.tasks:
                self.tasks[key] = asyncio.get_running_loop().create_task(self.run_probe(spec))

    async def run_probe(self, spec: ProbeSpec) -> None:
        """One probe's stream; every way it can fail becomes a Sample, never a dead agent."""
        if spec.kind not in QUICK_KINDS:
            await asyncio.sleep(SLOW_IMPORT_DELAY_S)
            try:
                await asyncio.to_thread(registry.probe_module, spec.kind)
            except Exception:  # registry.stream below meets the same error and reports it
                pass
        try:
            stream = registry.stream(spec, self.host)
        except ModuleNotFoundError as exc:
            self.emit_sample(error_sample(spec.kind, spec.target, ERROR_UNAVAILABLE,
                                          missing_module_message(spec.kind, self.host, exc.name), host=self.host))
            return
        except registry.UnknownProbe as exc:
            self.emit_sample(error_sample(spec.kind, spec.target, ERROR_UNAVAILABLE,
                                          f"probe {spec.kind} unavailable on {self.host}: {exc}", host=self.host))
            return
        except Exception as exc:  # a bad target (TargetError) or a probe's bug
            self.emit_sample(error_sample(spec.kind, spec.target, "exception", f"{type(exc).__name__}: {exc}",
                                          host=self.host))
            return
        try:
            async for sample in stream:
                self.emit_sample(sample)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the probe ended badly; say so, keep the others
            self.emit_sample(error_sample(spec.kind, spec.target, "exception",
                                          f"probe stopped: {type(exc).__name__}: {exc}", host=self.host))

    def handle_line(self, line: bytes) -> None:
        self.last_input = time.monotonic()
        if not line.strip():
            return
        try:
            msg = json.loads(line)
        except ValueError as exc:
            self.emit({"error": f"not JSON from the console: {exc}"})
            return
        if not isinstance(msg, dict):
            return
        if "ping" in msg:
            self.emit({"pong": msg["ping"], "samples": self.samples_written})
        if "specs" in msg:
            self.set_specs(msg["specs"])
        if msg.get("full"):
            self._sent.clear()  # the console lost track: the next snapshots go whole
        if msg.get("stop"):
            self.stop("asked to stop")

    async def watchdog(self, original_ppid: int) -> None:
        """Exit when the console can no longer reach us, even if stdin never sees EOF.

        It wakes when the keepalive or the lifetime runs out, and every PARENT_CHECK_S to look at
        its parent: not on a fixed short beat (it was 0.5 s), each wake-up of a sleeping agent costs
        ~130 µs of CPU on a virtual host before any work.
        """
        while not self.done.is_set():
            now = time.monotonic()
            if os.getppid() != original_ppid:
                self.stop("parent process gone")
            elif now - self.last_input > self.keepalive_timeout:
                self.stop(f"no keepalive from the console for {self.keepalive_timeout:g} s")
            elif self.max_lifetime is not None and now - self.started > self.max_lifetime:
                self.stop(f"max lifetime {self.max_lifetime:g} s reached")
            else:
                due = min(PARENT_CHECK_S, self.last_input + self.keepalive_timeout - now,
                          PARENT_CHECK_S if self.max_lifetime is None else self.started + self.max_lifetime - now)
                await asyncio.sleep(max(due, 0.0) + 0.01)  # just past the deadline, not a hair before it


#: Where a module a probe needs comes from, for the line that says it is missing (C extensions cannot travel).
SYSTEM_PACKAGES = {"psutil": "python3-psutil"}


def missing_module_message(kind: str, host: str, module: str | None) -> str:
    """What is wrong and what to do: install the module on the host, or run the agent on a Python that has it."""
    package = SYSTEM_PACKAGES.get(module or "")
    where = f" (package {package}, or pip install {module})" if package else ""
    return (f"probe {kind} unavailable on {host}: missing module {module}; install it there{where} or set "
            f"python for {host} in the config's [ssh] hosts to an interpreter that has it")


def _check_request(request: Any) -> str | None:
    """Why this request cannot be served, or None when it can."""
    if not isinstance(request, dict):
        return "the first line must be a JSON object (the request)"
    agent_v, schema_v = request.get("agent"), request.get("schema")
    if agent_v != AGENT_VERSION or schema_v != SCHEMA_VERSION:
        return (f"version mismatch: this agent speaks agent protocol {AGENT_VERSION} and Sample schema "
                f"{SCHEMA_VERSION}, the console sent agent {agent_v} and schema {schema_v}; "
                "run the same warroom version on both ends")
    return None


def _start_stdin_reader(loop: asyncio.AbstractEventLoop, on_line: Callable[[bytes], None],
                        on_eof: Callable[[], None], fd: int = 0) -> None:
    """Read fd 0 in a daemon thread: a blocking read is portable and never holds up the loop."""

    def reader() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                loop.call_soon_threadsafe(on_eof)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                loop.call_soon_threadsafe(on_line, line)

    threading.Thread(target=reader, name="warroom-agent-stdin", daemon=True).start()


async def serve(fd_in: int = 0, write: Callable[[bytes], None] | None = None) -> str:
    """Run the agent protocol on fd_in/stdout; returns why it stopped."""
    out = sys.stdout.buffer
    loop = asyncio.get_running_loop()
    agent: Agent | None = None

    def direct_write(data: bytes) -> None:
        out.write(data)
        out.flush()

    pending: list[bytes] = []
    last_write = -BATCH_S

    def write_out(data: bytes) -> None:
        nonlocal last_write
        last_write = loop.time()
        try:
            direct_write(data)
        except (BrokenPipeError, OSError, ValueError):
            if agent is not None:
                agent.stop("stdout closed")

    def flush() -> None:
        data = b"".join(pending)
        pending.clear()
        write_out(data)

    def batched_write(data: bytes) -> None:
        # A line after a quiet spell leaves at once (a fresh host's first Sample waits for nothing, and
        # a callback could sit behind a probe's slow first import); the lines that follow it within
        # BATCH_S leave together in one write: one SSH packet (framing, MAC, a compression flush) for
        # most of a second's Samples instead of one per line.
        if pending:
            pending.append(data)
            return
        wait = last_write + BATCH_S - loop.time()
        if wait <= 0:
            write_out(data)
            return
        pending.append(data)
        loop.call_later(wait, flush)

    writer = write or direct_write
    agent_writer = write or batched_write
    hello = {"hello": {"agent": AGENT_VERSION, "schema": SCHEMA_VERSION, "pid": os.getpid(),
                       "python": ".".join(str(p) for p in sys.version_info[:3])}}
    writer(json.dumps(hello, separators=(",", ":")).encode() + b"\n")

    first: asyncio.Future[bytes | None] = loop.create_future()
    eof = False
    early: list[bytes] = []  # lines that arrive while the request is still being checked

    def on_line(line: bytes) -> None:
        if not first.done():
            first.set_result(line)
        elif agent is not None:
            agent.handle_line(line)
        else:
            early.append(line)

    def on_eof() -> None:
        nonlocal eof
        eof = True
        if not first.done():
            first.set_result(None)
        elif agent is not None:
            agent.stop("stdin closed")

    _start_stdin_reader(loop, on_line, on_eof, fd_in)
    line = await first
    if line is None:
        return "stdin closed before the request"
    try:
        request = json.loads(line)
    except ValueError as exc:
        request = None
        problem: str | None = f"the request is not JSON: {exc}"
    else:
        problem = _check_request(request)
    if problem is not None:
        writer(json.dumps({"fatal": problem}).encode() + b"\n")
        return problem
    keepalive = request.get("keepalive_timeout", DEFAULT_KEEPALIVE_TIMEOUT)
    lifetime = request.get("max_lifetime")
    agent = Agent(agent_writer, host=str(request.get("host") or "remote"),
                  keepalive_timeout=float(keepalive) if isinstance(keepalive, (int, float)) else
                  DEFAULT_KEEPALIVE_TIMEOUT,
                  max_lifetime=float(lifetime) if isinstance(lifetime, (int, float)) else None,
                  deltas=request.get("deltas") is True)
    if eof:
        return "stdin closed"
    agent.set_specs(request.get("specs") or [])
    for line in early:
        agent.handle_line(line)
    await asyncio.sleep(0)  # the probes' first steps import their modules
    _resume_collector()
    watchdog = loop.create_task(agent.watchdog(os.getppid()))
    await agent.done.wait()
    watchdog.cancel()
    for task in agent.tasks.values():
        task.cancel()
    if pending:
        flush()
    return agent.exit_reason


def _resume_collector() -> None:
    """The bootstrap starts the agent with the collector off: its passes while the start imports
    walk only what lives as long as the agent (modules, classes, functions). That is frozen, out of
    every later pass too, and the collector resumes. Start-up CPU to the first Samples (tcp + system,
    paired starts): 4-11% less here. A process that never turned it off (a test running serve()) is
    left as it is."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main() -> None:
    reason = asyncio.run(serve())
    try:
        sys.stderr.write(f"warroom agent exiting: {reason}\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    # os._exit: the stdin thread may be blocked in read(), and worker threads of
    # cancelled probes must not keep a process alive on a production host.
    os._exit(0)


if __name__ == "__main__":
    main()
