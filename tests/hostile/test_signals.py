"""Every exit path stops every child: SIGTERM, SIGHUP and SIGINT to each way of running warroom.

The child that outlived its console before was tcpdump (a capture on lo). Each test starts a
real run with a capture, waits until tcpdump is running as its child, sends the signal, and
checks that the run ends and no tcpdump of it is left, within a second of the run ending.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.tmux_server import stop_tmux_server

ROOT = Path(__file__).resolve().parents[2]
# Faulthandler: a run that does not end gets SIGABRT (see stopped_within) and prints every thread's stack.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
STOP_SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]

pytestmark = pytest.mark.system


def wait_for(predicate: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def is_capturing_tcpdump(proc: psutil.Process) -> bool:
    """The capture itself (``tcpdump -i IF ... -w -``), not the short-lived ``tcpdump -d`` that checks the
    filter before it: a test that took that one for the capture saw it end a second later, on its own."""
    try:
        return proc.name() == "tcpdump" and "-w" in proc.cmdline()
    except psutil.Error:
        return False


def tcpdumps_of(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if is_capturing_tcpdump(p)]
    except psutil.NoSuchProcess:
        return []


def assert_gone(children: list[psutil.Process], within: float) -> None:
    _gone, alive = psutil.wait_procs(children, timeout=within)
    assert not alive, f"left running: {[p.pid for p in alive]}"


def stopped_within(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit status of ``proc`` once it ends within ``timeout`` s; else the test fails with where each of
    its threads was (faulthandler's dump on SIGABRT), to tell which part of the exit path hung."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            _out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
        stacks = err.decode(errors="replace")[-6000:]
        pytest.fail(f"still running {timeout:g} s after the signal; its threads then:\n{stacks}")


def as_a_terminals_foreground_job() -> None:
    """Signal dispositions as a command typed at a terminal starts with, whatever the test run's own are:
    a suite started in the background (`cmd &` in a script) ignores SIGINT and passes that on to every
    child, and one started under nohup ignores SIGHUP (the SIGINT run then never stopped)."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def capturing_run(argv: list[str], start: Callable[[], None] = as_a_terminals_foreground_job
                  ) -> Iterator[tuple[subprocess.Popen[bytes], list[psutil.Process]]]:
    """A warroom run of ``argv`` (its signal dispositions set by ``start``) once its tcpdump runs; killed
    on the way out if it is still running."""
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", *argv], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=start)
    try:
        children = wait_for(lambda: tcpdumps_of(proc.pid), 15)
        assert children, f"no tcpdump started: {proc.stderr.read().decode() if proc.poll() is not None else ''}"
        assert isinstance(children, list)
        yield proc, children
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_and_signal(argv: list[str], signum: int) -> int:
    with capturing_run(argv) as (proc, children):
        time.sleep(0.3)
        proc.send_signal(signum)
        code = stopped_within(proc, 8)
        assert_gone(children, within=1.0)
        return code


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_json_stream_with_a_capture_stops_tcpdump_on_each_signal(signum: int) -> None:
    code = run_and_signal(["--json", "--capture", "lo", "--capture-filter", "port 9"], signum)
    assert code in (128 + signum, 130)


def test_a_json_stream_under_nohup_outlives_the_hangup_and_stops_on_sigterm() -> None:
    """`nohup warroom --json ... &`: the terminal closing (SIGHUP) is what nohup asked to survive."""
    def as_nohup_starts_it() -> None:
        as_a_terminals_foreground_job()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    with capturing_run(["--json", "--capture", "lo", "--capture-filter", "port 9"], as_nohup_starts_it) as (
            proc, children):
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None, "the hangup stopped a run started under nohup"
        assert all(child.is_running() for child in children)
        proc.send_signal(signal.SIGTERM)
        assert stopped_within(proc, 8) == 128 + signal.SIGTERM
        assert_gone(children, within=1.0)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_capture_subcommand_stops_tcpdump_on_each_signal(signum: int) -> None:
    code = run_and_signal(["capture", "-i", "lo", "-f", "port 9", "--duration", "60"], signum)
    assert code == 128 + signum


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_console_on_screen_stops_tcpdump_on_each_signal(signum: int, tmp_path: Path) -> None:
    """The full-screen console in a real terminal (tmux): a signal quits it like q, children included."""
    session = f"wr-sig-{os.getpid()}-{signum}"
    marker = tmp_path / "exit-code"
    command = (f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m console.cli --capture lo "
               f"--capture-filter 'port 9'; echo $? > {marker}; sleep 30")
    # A tmux server of its own: the default one may be a user's, and it exits with its last session.
    subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
                   check=True)
    try:
        def console() -> psutil.Process | None:
            for proc in psutil.process_iter(["cmdline"]):
                try:
                    cmd = proc.info["cmdline"] or []
                    if "console.cli" in cmd and "--capture" in cmd and proc.ppid() != 1 and tcpdumps_of(proc.pid):
                        return proc
                except psutil.Error:  # ended during the scan
                    continue
            return None

        found = wait_for(console, 20)
        assert isinstance(found, psutil.Process), "the console with its capture never started"
        children = tcpdumps_of(found.pid)
        time.sleep(0.5)
        found.send_signal(signum)
        found.wait(timeout=8)
        assert_gone(children, within=1.0)
        assert wait_for(lambda: marker.exists() and marker.read_text().strip(), 5)
        assert marker.read_text().strip() == "0"  # quit as q does: a clean exit
    finally:
        stop_tmux_server(session)


def test_closing_the_terminal_under_the_console_leaves_no_process() -> None:
    """A tmux pane killed just as the first frame draws (an SSH session dropped): the console must end.

    Textual's shutdown writes to the terminal first, and with the terminal gone those writes could
    block for ever: 2 of 10 such consoles were still alive, probes running, minutes later. Each run
    here is marked so only its own processes are counted."""
    socket_name = f"wr-hup-{os.getpid()}"
    mark = f"WARROOM_HUP_TEST={os.getpid()}"
    # A placeholder session keeps this private tmux server up between the kills: without it the
    # server exits with its last session, and the next new-session can race that exit.
    subprocess.run(["tmux", "-L", socket_name, "new-session", "-d", "-s", "keep", "sleep 600"], check=True)
    try:
        for i in range(10):
            session = f"hup{i}"
            subprocess.run(["tmux", "-L", socket_name, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                            f"cd {ROOT} && {mark} PYTHONPATH={ROOT} exec {sys.executable} -m console.cli demo"],
                           check=True)

            def screen(session: str = session) -> str:
                return subprocess.run(["tmux", "-L", socket_name, "capture-pane", "-p", "-t", session],
                                      capture_output=True, text=True).stdout

            assert wait_for(lambda: "Targets" in screen(), 30), "the demo never drew its first frame"
            subprocess.run(["tmux", "-L", socket_name, "kill-session", "-t", session], check=False)
    finally:
        stop_tmux_server(socket_name)

    def ours() -> list[psutil.Process]:
        found = []
        for pid in psutil.pids():
            try:
                proc = psutil.Process(pid)
                if "console.cli" in proc.cmdline() and mark in " ".join(
                        f"{k}={v}" for k, v in proc.environ().items()):
                    found.append(proc)
            except (psutil.Error, OSError):  # a process that ended during the scan is not ours to count
                continue
        return found

    left = wait_for(lambda: not ours(), 10) or ours()
    try:
        assert left is True, f"consoles still running after their terminal closed: {[p.pid for p in ours()]}"
    finally:
        for proc in ours():
            proc.kill()
