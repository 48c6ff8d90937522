"""Benchmark the SSH vantage points against real sshd on loopback; every figure beside its target.

1. Agent cost: one host running every probe in probes/ at 1 Hz for --seconds (the worst case), then
   another running what the console itself asks a host to run for a TCP and an HTTP target:
   the time from launch to its first Sample (connect, host key, ship the agent,
   first measurement: target 0.3 s), the agent's CPU (user+sys over wall time:
   target 1% of a core), the bytes the agent's output took on the channel
   (JSON lines as read, socket tables as changes) and on the wire (the SSH TCP
   connection's kernel byte counters from `ss -ti`, both directions, SSH framing,
   compression and encryption included: target 2 KB/s). The plan runs again on a host with
   --busy-processes more (sleeping) processes, as a production host has: the host probes read /proc
   per process; and again on a host holding --time-wait TIME-WAIT sockets, as a host whose
   clients close their connections first (no keep-alive) holds: the socket reading reads every one.
   Beside each agent figure: its wake-ups a second and what one wake-up of a sleeping python costs this
   machine then (on this test VM it moved from ~60 to ~150 µs within an hour; the agent's figure follows it).
2. Fan-out: --hosts sshd on 127.0.0.x; time from launching all RemoteHosts
   to the first Sample from each (target: all within 1.5 s).

The sessions' shell: by default each sshd sets SHLVL=1 so the login shell does
not read root's ~/.bashrc (bash reads it for ssh commands at SHLVL < 2; on this
test machine it runs `pyenv init`, 0.13-0.35 s of CPU per session) and the agent
runs on this interpreter's real path instead of the pyenv shim (another 0.08 s).
--login-shell keeps both, as a plain `ssh host cmd` on this machine has them.

Run: python3 bench/ssh.py [--hosts 20] [--seconds 20] [--busy-processes 500] [--time-wait 10000] [--login-shell]
(as root)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import pkgutil
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ssh"))

from _machine import machine_busy_s  # noqa: E402
from sshd_harness import SSHD, Lab, agent_processes, fast_settings  # noqa: E402

import probes  # noqa: E402
from console.engine.probe_plan import remote_specs  # noqa: E402
from console.remote.host import KIND_STATUS, RemoteHost, ship_for  # noqa: E402
from console.remote.payload import build_payload, probe_modules  # noqa: E402
from console.remote.stream import stream_remote  # noqa: E402
from console.settings.hosts import HostConfig  # noqa: E402
from probes import procfs, sockdiag  # noqa: E402
from probes.runtime import ProbeSpec  # noqa: E402


def all_probe_specs(tcp_target: str) -> list[ProbeSpec]:
    """A 1 Hz spec for every probe module shipped in probes/ (whatever the other issues have landed)."""
    host_wide = {"system", "conns", "pools", "capture"}
    specs = []
    for info in pkgutil.iter_modules(probes.__path__):
        try:
            module = importlib.import_module(f"probes.{info.name}")
        except Exception:  # a probe whose deps are missing here is simply not benchmarked
            continue
        if not (hasattr(module, "stream") and hasattr(module, "KIND")) or info.name in ("capture",):
            continue  # capture is a stream of packets, benchmarked by its own issue
        if info.name in host_wide:
            specs.append(ProbeSpec(info.name, interval=1.0))
        elif info.name == "http":
            specs.append(ProbeSpec(info.name, f"http://{tcp_target}/", interval=1.0))
        elif info.name == "dns":
            specs.append(ProbeSpec(info.name, "localhost", interval=1.0))
        else:
            specs.append(ProbeSpec(info.name, tcp_target, interval=1.0))
    return specs


def accept_and_close(listener: socket.socket) -> None:
    """Serve the TCP target as a server does: accept each connection and close it.

    A listener that never accepts keeps every probe connection in its queue as a CLOSE-WAIT socket
    with tcp_info for as long as the bench runs, and the agent reads them all every second: the runs
    measured the socket table of a host whose server hangs, growing from run to run."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # the listener closed: the bench is done with it
            return
        conn.close()


def wire_bytes(addr: str, port: int) -> int:
    """Bytes acked + received on the SSH connections to addr:port, from the kernel (ss -ti)."""
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    total = 0
    for match in re.finditer(r"bytes_(?:acked|received):(\d+)", out):
        total += int(match.group(1))
    return total


COLD_TARGET_S = 0.3
CPU_TARGET = 1.0
WIRE_TARGET = 2048.0
FAN_OUT_TARGET_S = 1.5


#: A python that sleeps and wakes RATE times a second for SECONDS, then prints the CPU each wake-up cost it.
_WAKEUP_LOOP = """import sys,time
def ran():return int(open('/proc/self/schedstat').read().split()[0])
rate,n=float(sys.argv[1]),int(sys.argv[2]);time.sleep(1/rate);start=ran()
for _ in range(n):time.sleep(1/rate)
print((ran()-start)/n/1000)"""


def wakeup_cost_us(seconds: float = 5.0, rate: float = 2.0) -> float:
    """What waking a sleeping python costs this machine now, in µs of CPU: the figure a 1 Hz agent pays
    per wake-up before any work, and on a virtual machine the one that moves most from hour to hour
    (a microVM exits to its host to halt and to wake), so it is measured beside each agent figure."""
    done = subprocess.run([sys.executable, "-S", "-c", _WAKEUP_LOOP, str(rate), str(int(seconds * rate))],
                          capture_output=True, text=True, check=True)
    return float(done.stdout)


def context_switches(pid: int) -> int:
    """Voluntary and involuntary switches of every thread of ``pid`` so far (each wake-up is one)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # a thread ended
            continue
        total += sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s*(\d+)", text, re.M))
    return total


def host(name: str, login_shell: bool) -> HostConfig:
    return HostConfig(name) if login_shell else HostConfig(name, python=os.path.realpath(sys.executable))


def leave_time_wait(count: int) -> int:
    """``count`` loopback connections closed by their client first: each leaves a TIME-WAIT socket for
    the kernel's 60 s, as a service calling its backend without keep-alive does. Returns how many the
    kernel's counts show now (sockstat's tw: every TIME-WAIT on the host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        for _ in range(count):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            client.close()  # first: the TIME-WAIT is the client's, on an ephemeral port
            server.close()
    return sockdiag.sockstat().get("TCP.tw", 0)


async def agent_costs(lab: Lab, seconds: float, login_shell: bool, busy_processes: int, time_wait: int) -> None:
    """Runs, each on a fresh host: every probe (the worst case), then what the console itself asks
    a host to run for a TCP and an HTTP target (console.engine.probe_plan.remote_specs), then that plan
    again with ``busy_processes`` sleeping processes more on the host, and again with ``time_wait``
    TIME-WAIT sockets on it (0 skips either). The HTTP target is
    bench/_loopback_http.py, in a process of its own as bench/overhead.py runs it."""
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_loopback_http.py")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/"
        with socket.socket() as listener:  # a TCP target that answers, on loopback
            listener.bind(("127.0.0.1", 0))
            listener.listen(512)
            threading.Thread(target=accept_and_close, args=(listener,), daemon=True).start()
            try:
                target = f"127.0.0.1:{listener.getsockname()[1]}"
                await agent_cost(lab, seconds, login_shell, "cost", "127.0.0.40", all_probe_specs(target),
                                 "every probe in probes/", cold_line=True)
                plan = remote_specs([target, url])
                await agent_cost(lab, seconds, login_shell, "plan", "127.0.0.41", plan,
                                 f"the console's own plan for {target} and {url} (no socket table: the console "
                                 "asks a host for the summary only)", cold_line=False)
                if busy_processes:
                    # A production host runs hundreds of processes; the host probes read /proc per process.
                    sleepers = [subprocess.Popen(["sleep", str(int(seconds) + 60)]) for _ in range(busy_processes)]
                    try:
                        await agent_cost(lab, seconds, login_shell, "busy", "127.0.0.42", plan,
                                         f"the same plan on a host running {busy_processes} more (sleeping) processes, "
                                         f"{len(psutil.pids())} in all", cold_line=False)
                    finally:
                        for sleeper in sleepers:
                            sleeper.kill()
                        for sleeper in sleepers:
                            sleeper.wait()
                if time_wait:
                    held = leave_time_wait(time_wait)  # they last 60 s: the run below is within it
                    await agent_cost(lab, min(seconds, 40.0), login_shell, "time-wait", "127.0.0.43", plan,
                                     f"the same plan on a host holding {held:,} TIME-WAIT sockets (its clients "
                                     "close first, as without keep-alive)", cold_line=False)
            finally:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
    finally:
        server.terminate()
        server.wait(10)


async def agent_cost(lab: Lab, seconds: float, login_shell: bool, name: str, addr: str,
                     specs: list[ProbeSpec], label: str, *, cold_line: bool) -> None:
    sshd = lab.add(name, addr)
    remote = RemoteHost(host(name, login_shell), specs, fast_settings(lab, ping_interval=5.0))
    stream = remote.stream()
    sample_bytes = 0
    samples = 0
    kinds: dict[str, int] = {}
    start_wire = start_cpu = start = None
    start_wall = 0.0
    agent = None
    launched = time.monotonic()
    cold = None
    time_wait_held = 0
    async for sample in stream:
        if sample.kind == KIND_STATUS:
            continue
        if cold is None:
            cold = time.monotonic() - launched
        if agent is None:
            agent = agent_processes(sshd.addr, sshd.port)
            agent = next(p for p in agent if "warroom-agent" in " ".join(p.cmdline()))
            await asyncio.sleep(2.0)  # settle: start-up imports are not the steady state
            start_cpu = sum(agent.cpu_times()[:2])
            time_wait_held = sockdiag.sockstat().get("TCP.tw", 0)
            start_switches = context_switches(agent.pid)
            start_wire = wire_bytes(sshd.addr, sshd.port)
            start_channel = remote.bytes_received
            start = time.monotonic()
            start_wall = time.time()
            continue
        if start is None or sample.ts < start_wall:
            continue  # sent before the window opened (buffered while we settled)
        samples += 1
        kinds[sample.kind] = kinds.get(sample.kind, 0) + 1
        sample_bytes += len(sample.to_json().encode()) + 1
        if time.monotonic() - start >= seconds:
            break
    wall = time.monotonic() - start  # type: ignore[operator]
    cpu = sum(agent.cpu_times()[:2]) - start_cpu  # type: ignore[union-attr,operator]
    switches = context_switches(agent.pid) - start_switches  # type: ignore[union-attr]
    wire = wire_bytes(sshd.addr, sshd.port) - start_wire  # type: ignore[operator]
    channel = remote.bytes_received - start_channel  # type: ignore[operator]
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    kind_names = tuple(sorted({s.kind for s in specs}))
    payload = len(build_payload(ship_for(specs), kind_names))
    if cold_line:
        everything = len(build_payload(("dns",)))
        cold = cold or 0.0
        print(f"one host, cold: connect + host key + ship agent + first Sample: {cold:.3f} s "
              f"(target <= {COLD_TARGET_S} s: {cold / COLD_TARGET_S:.2f}x)")
        print(f"  agent payload: {payload:,} B for these probes ({len(probe_modules(kind_names))} modules of "
              f"probes/ plus {', '.join(ship_for(specs)) or 'nothing'}); all of probes/ and dnspython would be "
              f"{everything:,} B")
    print(f"agent cost, 1 host, {label}: {len(specs)} probes {list(kind_names)} at 1 Hz for {wall:.1f} s "
          f"(payload {payload:,} B):")
    print(f"  samples received: {samples} ({samples / wall:.1f}/s) by kind {kinds}")
    # Every socket is read each second: TIME-WAIT left by an earlier bench (overhead.py's 50 targets
    # leave thousands for 60 s) raised the every-probe figure from 0.95% to 5.8% here. Say so.
    print(f"  the host held {time_wait_held:,} TIME-WAIT sockets as the window opened (sockstat)")
    rate = 100 * cpu / wall
    print(f"  agent CPU: {rate:.2f} % of one core (user+sys {cpu:.2f} s; target <= {CPU_TARGET}%: "
          f"{rate / CPU_TARGET:.2f}x)")
    wake_us = wakeup_cost_us()
    print(f"  of which waking up: {switches / wall:.0f} wake-ups a second; one costs a sleeping python "
          f"{wake_us:.0f} µs of CPU on this machine now (a 2 Hz sleep loop, measured after this run), "
          f"{switches / wall * wake_us / 1e4:.2f}% of a core at that rate")
    if "conns" in kind_names or "pools" in kind_names:
        print(f"  of which the socket table's floor: {hash_walk_line()}")
    print(f"  channel: {channel / wall:,.0f} B/s as sent (socket tables as changes); the same Samples whole: "
          f"{sample_bytes / wall:,.0f} B/s")
    print(f"  wire (SSH, both directions, zlib): {wire / wall:,.0f} B/s (target <= {WIRE_TARGET:,.0f} B/s: "
          f"{wire / wall / WIRE_TARGET:.2f}x)")


async def fan_out(lab: Lab, n: int, login_shell: bool) -> None:
    t0 = time.monotonic()
    names = []
    for i in range(n):
        name = f"h{i:02d}"
        lab.add(name, f"127.0.0.{50 + i}")
        names.append(name)
    print(f"started {n} sshd in {time.monotonic() - t0:.2f} s")
    specs = [ProbeSpec("tcp", "127.0.0.1:9", interval=1.0), ProbeSpec("system", interval=1.0)]
    first: dict[str, float] = {}
    connected: dict[str, float] = {}
    busy_before, console_before = machine_busy_s(), time.process_time()
    start = time.monotonic()
    hosts = [host(name, login_shell) for name in names]
    async for sample in stream_remote(hosts, specs, settings=fast_settings(lab, connect_timeout=30.0),
                                      duration=60):
        now = time.monotonic() - start
        if sample.kind == KIND_STATUS:
            if sample.fields.get("state") == "connected":
                connected.setdefault(sample.host, now)
            elif sample.error:
                print(f"  {sample.host}: {sample.message}")
            continue
        first.setdefault(sample.host, now)
        if len(first) == n:
            break
    wall = time.monotonic() - start
    busy, console_cpu = machine_busy_s() - busy_before, time.process_time() - console_before
    times = sorted(first.values())
    print(f"fan-out to {n} hosts (connect + ship agent + first Sample), all launched at once:")
    print(f"  first Sample: fastest {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
          f"all {n} flowing after {times[-1]:.2f} s (target <= {FAN_OUT_TARGET_S} s: "
          f"{times[-1] / FAN_OUT_TARGET_S:.2f}x)")
    print(f"  connected (agent hello): median {statistics.median(connected.values()):.2f} s, "
          f"last {max(connected.values()):.2f} s")
    cpus = os.cpu_count() or 1
    # Every "host" here shares this machine's CPUs: when they are all busy, the figure is the CPU
    # of n sshd sessions and n agent starts divided by the cores, not a wait of the console's.
    print(f"  CPU meanwhile: the machine {busy:.2f} core-s of {cpus * wall:.2f} ({cpus} CPUs x {wall:.2f} s: "
          f"{busy / (cpus * wall):.0%} busy); the console {console_cpu:.2f} s "
          f"({console_cpu / n * 1000:.0f} ms a host), "
          f"the {n} sshd sessions and agent starts the rest ({(busy - console_cpu) / n * 1000:.0f} ms a host)")


def hash_walk_line() -> str:
    """What one reading of the socket table costs the kernel however few sockets there are: the walk of
    its whole established-connections hash (sized by the machine's memory at boot), timed by dumping a
    state no socket is in (CLOSING) on this machine, which is the bench's host too."""
    sockdiag.dump_tcp(states=1 << 11)
    start = time.process_time()
    for _ in range(50):
        sockdiag.dump_tcp(states=1 << 11)
    walk_ms = (time.process_time() - start) / 50 * 1000
    entries = procfs.read_int("/proc/sys/net/ipv4/tcp_ehash_entries")  # negative: the netns shares the host's
    buckets = "size unknown" if entries is None else f"{abs(entries):,} buckets"
    return (f"the kernel's walk of its established hash ({buckets}) takes {walk_ms:.1f} ms a reading, "
            f"{walk_ms / 10:.2f}% of a core at 1 Hz, before the first socket")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--busy-processes", type=int, default=500,
                        help="sleeping processes added for the busy-host run of the plan (0: skip it)")
    parser.add_argument("--time-wait", type=int, default=10000,
                        help="TIME-WAIT sockets left on the host for the last run of the plan (0: skip it)")
    parser.add_argument("--login-shell", action="store_true",
                        help="let sessions read root's ~/.bashrc and run python3 through PATH (pyenv shims here)")
    args = parser.parse_args()
    if not Path(SSHD).is_file():
        raise SystemExit(f"bench/ssh.py: no sshd at {SSHD}: run `bash scripts/install-test-deps.sh` first "
                         "(it installs openssh-server and the rest the tests and benches use)")
    print("sessions: " + ("the login shell as configured (~/.bashrc, python3 from PATH)" if args.login_shell else
                          f"SHLVL=1 (no ~/.bashrc), agent on {os.path.realpath(sys.executable)}; "
                          "--login-shell for the shell as configured"))
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp) / "lab", plain_shell=not args.login_shell)
        try:
            await agent_costs(lab, args.seconds, args.login_shell, args.busy_processes, args.time_wait)
            await fan_out(lab, args.hosts, args.login_shell)
        finally:
            lab.stop()
    print(f"(machine: {psutil.cpu_count()} CPUs, load {psutil.getloadavg()[0]:.2f})")


def _stop_on_term(signum: int, _frame: object) -> None:
    # SIGTERM (timeout, kill) as an exception: the finally above stops the bench's 20 sshd, which
    # a killed run used to leave listening.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_on_term)
    signal.signal(signal.SIGHUP, _stop_on_term)
    asyncio.run(main())
