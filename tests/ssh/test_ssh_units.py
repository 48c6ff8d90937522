"""The SSH side without sshd: host parsing, ss parsing, the agent run locally, payload, quoting."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from console.remote.host import capture_command, ship_for
from console.remote.payload import NO_PYTHON_MARK, agent_command, build_payload, request_line
from console.settings.hosts import HostConfigError, parse_host_arg, parse_hosts_section
from probes.agent import AGENT_VERSION
from probes.runtime import ProbeSpec
from probes.samples import Sample
from probes.ss_text import COLUMNS, SS_COMMAND, parse_line, parse_ss

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["; rm -rf /tmp/warroom-pwned", "$(touch /tmp/warroom-pwned)", "`touch /tmp/warroom-pwned`",
           "a'b\"c", "x\ntouch /tmp/warroom-pwned", "&& touch /tmp/warroom-pwned #"]


# ---------------------------------------------------------------- --host and the config section

@pytest.mark.parametrize(("text", "user", "name", "port"), [
    ("prod-1", None, "prod-1", None),
    ("ops@prod-1", "ops", "prod-1", None),
    ("ops@10.0.0.1:2222", "ops", "10.0.0.1", 2222),
    ("[::1]:2200", None, "::1", 2200),
    ("db.internal.example:22", None, "db.internal.example", 22),
])
def test_host_arg_parses_user_name_and_port(text: str, user: str | None, name: str, port: int | None) -> None:
    host = parse_host_arg(text)
    assert (host.user, host.name, host.port) == (user, name, port)


@pytest.mark.parametrize("text", ["", "prod:0", "prod:99999", "prod:ssh", "bad user@prod", "pr od", "h;rm -rf /"])
def test_bad_host_args_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(HostConfigError) as info:
        parse_host_arg(text)
    assert str(info.value)


def test_hosts_section_parses_names_and_tables() -> None:
    cfg = parse_hosts_section({
        "ssh_config": "/etc/warroom/ssh_config", "accept_new_host_keys": True,
        "hosts": ["prod-1", {"name": "prod-2", "address": "127.0.0.9", "user": "ops", "port": 2222,
                             "python": "/usr/bin/python3.11", "sudo": True, "jump": "bastion"}],
    })
    assert [h.name for h in cfg.hosts] == ["prod-1", "prod-2"]
    prod2 = cfg.hosts[1]
    assert (prod2.destination, prod2.user, prod2.port, prod2.python, prod2.sudo, prod2.jump) == \
        ("127.0.0.9", "ops", 2222, "/usr/bin/python3.11", True, "bastion")
    assert cfg.settings.ssh_config == ("/etc/warroom/ssh_config",)
    assert cfg.settings.accept_new_host_keys is True


@pytest.mark.parametrize("section", [
    {"hosts": [{"name": "a", "port": "22"}]},
    {"hosts": [{"name": "a", "sudo": "yes"}]},
    {"hosts": [{"name": "a", "colour": "red"}]},
    {"hosts": ["a", "a"]},
    {"hosts": [42]},
    {"accept_new_host_keys": "yes"},
])
def test_bad_hosts_sections_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(HostConfigError):
        parse_hosts_section(section)


# ---------------------------------------------------------------- ss parsing

def test_ss_line_shapes() -> None:
    row = parse_line('ESTAB 0      36     [::ffff:127.0.0.1]:22  [::ffff:127.0.0.1]:50412 '
                     'users:(("sshd",pid=812,fd=4),("sshd",pid=790,fd=4))')
    assert row is not None
    named = dict(zip(COLUMNS, row, strict=True))
    assert {k: named[k] for k in ("proto", "state", "local", "remote", "recvq", "sendq", "pid", "process",
                                  "hidden")} == {
        "proto": "tcp", "state": "ESTAB", "local": "[::ffff:127.0.0.1]:22", "remote": "[::ffff:127.0.0.1]:50412",
        "recvq": 0, "sendq": 36, "pid": 812, "process": "sshd", "hidden": False}
    other_user = parse_line("TIME-WAIT 0 0 127.0.0.1:5432 127.0.0.1:40000")
    assert other_user is not None and other_user[COLUMNS.index("pid")] is None and other_user[-1] is True
    with_netid = parse_line('udp   UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("resolved",pid=1,fd=3))')
    assert with_netid is not None and with_netid[:3] == ["udp", "UNCONN", "127.0.0.53%lo:53"]
    assert parse_line("") is None
    assert parse_line("State Recv-Q Send-Q Local Address:Port Peer Address:Port Process") is None


def test_ss_parser_finds_a_real_listening_socket_with_its_owner() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        text = subprocess.run(SS_COMMAND.split(), check=True, capture_output=True, text=True).stdout
    summary, table = parse_ss(text, "prod-1")
    assert (summary.kind, table.kind) == ("conns", "conns_table")
    assert summary.host == table.host == "prod-1" and summary.ok and table.ok
    assert port in summary.fields["listen_ports"]  # type: ignore[operator]
    rows = [dict(zip(table.fields["columns"], r, strict=True)) for r in table.fields["rows"]]  # type: ignore[arg-type,call-overload]
    mine = [r for r in rows if r["local"] == f"127.0.0.1:{port}"]
    assert mine and mine[0]["state"] == "LISTEN" and mine[0]["pid"] == os.getpid()
    assert summary.fields["total"] == len(rows)
    Sample.from_json(table.to_json())  # JSON-safe end to end


# ---------------------------------------------------------------- the agent, run locally

def _agent(python_args: list[str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *(python_args or []), "-m", "probes.agent"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(proc: subprocess.Popen[bytes], n: int) -> list[dict[str, object]]:
    assert proc.stdout is not None
    return [json.loads(proc.stdout.readline()) for _ in range(n)]


def test_agent_refuses_a_version_mismatch_with_a_clear_error() -> None:
    proc = _agent()
    request = json.loads(request_line("h", []))
    request["agent"] = AGENT_VERSION + 1
    out, _ = proc.communicate(json.dumps(request).encode() + b"\n", timeout=10)
    hello, fatal = (json.loads(line) for line in out.splitlines())
    assert hello["hello"]["agent"] == AGENT_VERSION
    assert "version mismatch" in fatal["fatal"] and "same warroom version" in fatal["fatal"]
    assert proc.returncode == 0


#: Run before the bootstrap, in the agent's own process: says on stderr when its collector goes off, and
#: when it comes back on how many objects were frozen then.
_COLLECTOR_WATCH = """
import gc, sys, threading, time
def watch():
    while gc.isenabled():
        time.sleep(0.001)
    sys.stderr.write('collector off\\n')
    while not gc.isenabled():
        time.sleep(0.001)
    sys.stderr.write('collector on, frozen %d\\n' % gc.get_freeze_count())
    sys.stderr.flush()
threading.Thread(target=watch, daemon=True).start()
time.sleep(0.01)
"""


def test_the_agent_starts_with_its_collector_off_and_resumes_it_with_its_imports_frozen() -> None:
    """The real bootstrap and payload, as sshd would start them: the collector stays off while the start
    imports (its passes there walk only what lives as long as the agent), and is on again, with those
    objects frozen, by the time the probes stream. An agent left with it off would grow without end."""
    from probes.agent import BOOTSTRAP

    specs = [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2), ProbeSpec("system", interval=0.2)]
    payload = build_payload(ship_for(specs), ("system", "tcp"))
    proc = subprocess.Popen([sys.executable, "-S", "-c", _COLLECTOR_WATCH + BOOTSTRAP, "warroom-agent",
                             str(len(payload)), "site", "nossl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(payload + request_line("prod-9", specs))
    proc.stdin.flush()
    kinds = {str(line.get("kind")) for line in _lines(proc, 5)[1:]}
    time.sleep(0.5)
    proc.stdin.close()  # the agent stops
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait(10)
    assert kinds <= {"tcp", "system"} and "tcp" in kinds
    lines = err.decode().splitlines()
    assert lines[0] == "collector off", err
    on = next(line for line in lines if line.startswith("collector on"))
    assert int(on.rsplit(" ", 1)[1]) > 10_000, on  # the modules, classes and functions of its start


def test_agent_reports_missing_module_as_an_unavailable_sample() -> None:
    # -S: no site-packages, as on a bare production host: no h11 (a payload carries it; this agent has no
    # payload) and no psutil, which the host probes do without.
    proc = _agent(["-S"])
    specs = [ProbeSpec("system", interval=0.2), ProbeSpec("tcp", "127.0.0.1:9", interval=0.2),
             ProbeSpec("http", "http://127.0.0.1:9/", interval=0.2), ProbeSpec("no_such_probe")]
    assert proc.stdin is not None
    proc.stdin.write(request_line("prod-9", specs))
    proc.stdin.flush()
    got = [Sample.from_dict(d) for d in _lines(proc, 5)[1:]]
    proc.stdin.close()
    proc.wait(5)
    by_kind = {s.kind: s for s in got}
    assert by_kind["http"].error == "unavailable"
    assert str(by_kind["http"].message).startswith("probe http unavailable on prod-9: missing module h11; "
                                                   "install it there or set python for prod-9")
    assert by_kind["no_such_probe"].error == "unavailable"
    assert by_kind["tcp"].error == "refused" and by_kind["tcp"].host == "prod-9"  # the other probes still run
    system = by_kind["system"]  # from /proc alone
    assert system.ok and system.fields["cpu_count"] == os.cpu_count() and system.fields["top"], system.message


def test_agent_exits_on_stdin_eof() -> None:
    proc = _agent()
    assert proc.stdin is not None
    proc.stdin.write(request_line("h", [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)]))
    proc.stdin.flush()
    _lines(proc, 2)
    proc.stdin.close()
    assert proc.wait(5) == 0
    assert b"stdin closed" in (proc.stderr.read() if proc.stderr else b"")


def test_agent_watchdog_exits_without_keepalives_even_with_stdin_open() -> None:
    proc = _agent()
    assert proc.stdin is not None
    proc.stdin.write(request_line("h", [ProbeSpec("tcp", "127.0.0.1:9", interval=0.2)], keepalive_timeout=1.5))
    proc.stdin.flush()
    start = time.monotonic()
    try:
        assert proc.wait(6) == 0  # stdin is still open: only the watchdog can end it
    finally:
        proc.kill()
    assert 1.4 < time.monotonic() - start < 5
    assert b"no keepalive" in (proc.stderr.read() if proc.stderr else b"")


def test_agent_answers_pings_and_changes_probes_on_request() -> None:
    proc = _agent()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(request_line("h", [ProbeSpec("tcp", "127.0.0.1:9", interval=0.3)]))
    proc.stdin.flush()
    assert _lines(proc, 2)[1]["target"] == "127.0.0.1:9"
    proc.stdin.write(b'{"ping": 42}\n')
    proc.stdin.write(json.dumps({"specs": [ProbeSpec("tcp", "127.0.0.1:7", interval=0.3).to_dict()]}).encode()
                     + b"\n")
    proc.stdin.flush()
    seen = _lines(proc, 6)
    proc.stdin.close()
    proc.wait(5)
    assert any(d.get("pong") == 42 for d in seen)
    targets = [d.get("target") for d in seen if "kind" in d]
    assert "127.0.0.1:7" in targets
    assert "127.0.0.1:9" not in targets[targets.index("127.0.0.1:7"):]  # the old probe stopped


# ---------------------------------------------------------------- shipping

def test_dnspython_ships_only_for_targets_that_are_names() -> None:
    """An IP target needs no lookup: tcp, icmp and http to addresses travel without dnspython."""
    by_address = [ProbeSpec("tcp", "127.0.0.1:9"), ProbeSpec("icmp", "::1"), ProbeSpec("system")]
    assert ship_for(by_address) == ()
    assert ship_for([*by_address, ProbeSpec("http", "http://127.0.0.1:8/")]) == ("h11",)  # HTTP/1.1, no lookup
    assert ship_for([*by_address, ProbeSpec("tcp", "db.internal:5432")]) == ("dns",)  # parsed, never looked up
    assert ship_for([ProbeSpec("http", "http://[::1]:8/x"), ProbeSpec("dns", "localhost")]) == ("h11", "dns")
    assert ship_for([ProbeSpec("http", "http://web.internal/")]) == ("h11", "dns")
    assert ship_for([ProbeSpec("layers", "127.0.0.1:9")]) == ("dns",)  # layers imports the dns probe itself
    assert ship_for([ProbeSpec("tcp", "not a target")]) == ("dns",)  # unparsable: the agent reports it



def test_payload_is_pure_python_and_runs_from_memory_through_the_bootstrap(tmp_path: Path) -> None:
    payload = build_payload(("dns",))
    names = zipfile.ZipFile(__import__("io").BytesIO(payload)).namelist()
    assert "probes/agent.py" in names and "probes/tcp.py" in names and "dns/resolver.py" in names
    assert not [n for n in names if n.endswith(".so")]
    # Bytecode travels beside the modules a first Sample waits for only: a quick probe's, not http's (imported
    # after the first Samples), nor a shipped package's.
    assert "probes/tcp.pyc" in names and "probes/agent.pyc" in names and "probes/http.pyc" not in names
    assert not [n for n in names if n.endswith(".pyc") and not n.startswith("probes/")]
    assert build_payload(("dns",)) == payload  # deterministic
    # Run the real remote command in a shell, from an empty directory: nothing may be written.
    proc = subprocess.Popen(["sh", "-c", agent_command(len(payload))], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    out, _ = proc.communicate(payload + request_line("h", []), timeout=20)
    assert json.loads(out.splitlines()[0])["hello"]["agent"] == AGENT_VERSION
    assert list(tmp_path.iterdir()) == []


def test_every_form_of_import_of_a_probes_module_is_found(tmp_path: Path) -> None:
    """What the payload ships is what these statements name: a module missed is a probe "unavailable" on a host."""
    from console.remote.payload import _imports_in

    module = tmp_path / "m.py"
    module.write_text("from probes import registry, tls as tls_probe  # a comment\n"
                      "from probes import (\n    dns,  # why\n    http as http_probe,\n)\n"
                      "def f():\n    from probes.sockdiag import dump_tcp\n"
                      "import probes.samples\n"
                      "from probesx import nothing\n")
    assert _imports_in(module, 1) == ("dns", "http", "registry", "samples", "sockdiag", "tls")


@pytest.mark.parametrize("same_python", [True, False])
def test_the_payload_runs_its_bytecode_on_the_same_python_and_its_source_on_another(tmp_path: Path,
                                                                                    same_python: bool) -> None:
    payload = build_payload((), ("tcp",))
    if not same_python:  # another Python version: every .pyc has a magic number this one does not know
        src, out = zipfile.ZipFile(io.BytesIO(payload)), io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                dst.writestr(info, b"\x00\x00\r\n" + data[4:] if info.filename.endswith(".pyc") else data)
        payload = out.getvalue()
    archive = tmp_path / "agent.zip"
    archive.write_bytes(payload)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import probes.tcp as m; "
            "print(m.stream.__code__.co_filename)")
    loaded_from = subprocess.run([sys.executable, "-S", "-c", code, str(archive)], capture_output=True, text=True,
                                 timeout=20, check=True).stdout.strip()
    # Bytecode keeps the name it was compiled under; zipimport names the source it compiles by the archive.
    assert loaded_from == ("probes/tcp.py" if same_python else f"{archive}/probes/tcp.py")


def test_agent_command_without_python_prints_the_marker(tmp_path: Path) -> None:
    out = subprocess.run(["sh", "-c", agent_command(10, "python3-not-here")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=10)
    assert out.stdout.strip() == NO_PYTHON_MARK


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_python_setting_is_one_quoted_word(hostile: str, tmp_path: Path) -> None:
    marker = Path("/tmp/warroom-pwned")
    marker.unlink(missing_ok=True)
    try:
        command = agent_command(10, shlex.quote(hostile))  # the config's python, one hostile word
    except ValueError:
        assert "\n" in hostile  # refused: a command line must be one line
        return
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=10)
    assert out.stdout.strip() == NO_PYTHON_MARK  # looked up as a command name, not run as shell text
    assert not marker.exists()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_capture_script_treats_hostile_filter_and_interface_as_data(hostile: str, tmp_path: Path) -> None:
    marker = Path("/tmp/warroom-pwned")
    marker.unlink(missing_ok=True)
    if any(ch.isspace() for ch in hostile):
        with pytest.raises(ValueError, match="not an interface name"):
            capture_command(interface=hostile, count=1, seconds=1)
        interface = "lo" + hostile.replace(" ", "").replace("\n", "")
    else:
        interface = hostile
    script = capture_command(interface=interface, bpf=hostile, count=1, seconds=1)
    assert "\n" not in script
    # SSH_CONNECTION as sshd sets it; run the command for real: tcpdump must refuse, nothing else may run.
    env = {**os.environ, "SSH_CONNECTION": "127.0.0.1 5555 127.0.0.2 22"}
    for shell in ("sh", "bash"):  # the login shell sshd hands our command to
        # stdin stays open, as the SSH channel's does while we want the capture.
        proc = subprocess.Popen([shell, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        try:
            assert proc.wait(15) != 0
        finally:
            proc.kill()
            _, stderr = proc.communicate()
        assert "tcpdump" in stderr
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


def test_remote_commands_are_one_line_for_any_login_shell() -> None:
    command = agent_command(12345, "python3")
    assert "\n" not in command and "!" not in command and command.startswith("exec sh -c ")


def test_capture_script_puts_sudo_right_before_tcpdump() -> None:
    script = capture_command(interface="eth0", bpf="port 5432", count=10, seconds=5, sudo=True)
    assert "setsid timeout -s INT 5 sudo -n tcpdump -U -w - -n -c 10" in shlex.split(script)[-1]
    assert "sudo" not in capture_command(interface="eth0", count=10, seconds=5)


def test_agent_exits_when_its_parent_dies_even_with_stdin_open() -> None:
    """sshd's session process killed while something else still holds the agent's stdin: the watchdog's
    look at its parent ends it, with nothing of it left running."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The shell is the agent's parent; it waits, and the agent shares the shell's stdin pipe with us
    # (through fd 3: sh gives a command run with & /dev/null as its stdin, before its own redirections).
    parent = subprocess.Popen(["sh", "-c", f"exec 3<&0; {shlex.quote(sys.executable)} -m probes.agent <&3 3<&- & "
                               "echo $!; wait"],
                              cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    assert parent.stdin is not None and parent.stdout is not None
    agent_pid = int(parent.stdout.readline())
    try:
        parent.stdin.write(request_line("h", [ProbeSpec("tcp", "127.0.0.1:9", interval=0.5)]))
        parent.stdin.flush()
        assert json.loads(parent.stdout.readline())["hello"]["pid"] == agent_pid
        assert json.loads(parent.stdout.readline())["kind"] == "tcp"  # a first Sample: the agent runs
        parent.kill()
        parent.wait(5)
        killed = time.monotonic()
        while time.monotonic() - killed < 6 and os.path.exists(f"/proc/{agent_pid}") and \
                not _is_zombie(agent_pid):
            time.sleep(0.05)
        gone_after = time.monotonic() - killed
        assert not os.path.exists(f"/proc/{agent_pid}") or _is_zombie(agent_pid), \
            "the agent outlived its parent by 6 s with its stdin still open"
        assert gone_after < 4.0  # PARENT_CHECK_S is 2 s; the rest is slack for a loaded machine
    finally:
        parent.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(agent_pid, 9)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
