"""Real OpenSSH sshd instances on loopback ports, for tests and bench/ssh.py.

Each Sshd has its own host key, accepts the lab's client key for root, and
runs in the foreground (-D) so the harness owns it. A "no python" host gets a
ForceCommand wrapper that runs the client's command with a PATH holding only
a shell and ss - no python3 - as a stripped-down production host would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from console.settings.hosts import SSHSettings

SSHD = "/usr/sbin/sshd"
_NO_PYTHON_TOOLS = ("sh", "ss", "cat", "sleep", "env", "kill", "timeout", "setsid", "tcpdump", "echo")


def _free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "warroom-test", "-f", str(path)], check=True)
    return path


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


@dataclass
class Sshd:
    """One sshd listening on addr:port; start()/stop()/kill_all() as a test needs."""

    workdir: Path
    addr: str
    port: int
    host_key: Path
    authorized_keys: Path
    python: bool = True
    proc: subprocess.Popen[bytes] | None = None
    extra_config: list[str] = field(default_factory=list)
    plain_shell: bool = False
    """Sessions skip the login shell's ~/.bashrc (bash reads it for ssh commands only at SHLVL < 2):
    on this test machine root's .bashrc runs `pyenv init`, 0.13-0.35 s per session."""

    @property
    def config_path(self) -> Path:
        return self.workdir / "sshd_config"

    def write_config(self) -> None:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.addr}",
            f"HostKey {self.host_key}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the keys live in pytest's tmp dirs
            "AllowTcpForwarding yes",  # a jump host forwards direct-tcpip channels
            "X11Forwarding no",
            "PrintMotd no",
            "MaxStartups 100:30:200",
            "MaxSessions 20",
            "LogLevel ERROR",
        ]
        if self.plain_shell:
            lines.append("SetEnv SHLVL=1")
        if not self.python:
            bindir = self.workdir / "bin"
            bindir.mkdir(exist_ok=True)
            for tool in _NO_PYTHON_TOOLS:
                found = shutil.which(tool)
                if found and not (bindir / tool).exists():
                    (bindir / tool).symlink_to(found)
            lines.append(f'ForceCommand PATH={bindir}; export PATH; exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"')
        lines.extend(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Sshd:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory
        self.write_config()
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"sshd on {self.addr}:{self.port} exited: {err}")
            try:
                with socket.create_connection((self.addr, self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd on {self.addr}:{self.port} did not come up")

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (they call setsid, so only the tree finds them)."""
        if self.proc is None:
            return []
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Stop the listener only: open sessions go on, as on a real host."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def kill_all(self) -> None:
        """SIGKILL the listener and every session under it: the host's sshd dies mid-session."""
        pids = self.session_pids()
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            if self.proc.stderr:
                self.proc.stderr.close()
        self.proc = None


def agent_processes(addr: str, port: int) -> list[psutil.Process]:
    """Our agent processes (or tcpdump/ss loops) started through the sshd on addr:port.

    Found by SSH_CONNECTION in their environment, so an agent whose sshd session
    died (and that was re-parented to init) is still found.
    """
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        conn = env.get("SSH_CONNECTION", "").split()
        if len(conn) == 4 and conn[2] == addr and conn[3] == str(port) and proc.pid != os.getpid():
            found.append(proc)
    return found


@dataclass
class Lab:
    """Client key, ssh_config and known_hosts for a set of sshd hosts, all under one directory."""

    root: Path
    client_key: Path = field(init=False)
    known_hosts: Path = field(init=False)
    ssh_config: Path = field(init=False)
    hosts: dict[str, Sshd] = field(default_factory=dict)
    plain_shell: bool = False
    """Every host's sessions skip ~/.bashrc (see Sshd.plain_shell)."""

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.client_key = keygen(self.root / "client_key")
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.touch()
        self.ssh_config = self.root / "ssh_config"
        (self.root / "authorized_keys").write_text((self.root / "client_key.pub").read_text())
        self.write_ssh_config()

    def add(self, name: str, addr: str = "127.0.0.1", *, python: bool = True, trust: bool = True,
            port: int | None = None, host_key: Path | None = None, extra_config: list[str] | None = None,
            jump: str | None = None) -> Sshd:
        workdir = self.root / name
        workdir.mkdir(exist_ok=True)
        key = host_key or keygen(workdir / "host_key")
        sshd = Sshd(workdir=workdir, addr=addr, port=port or _free_port(addr), host_key=key,
                    authorized_keys=self.root / "authorized_keys", python=python,
                    extra_config=list(extra_config or []), plain_shell=self.plain_shell)
        sshd.jump = jump  # type: ignore[attr-defined]
        self.hosts[name] = sshd
        if trust:
            self.trust(name)
        self.write_ssh_config()
        return sshd.start()

    def trust(self, name: str) -> None:
        sshd = self.hosts[name]
        pub = Path(str(sshd.host_key) + ".pub").read_text().split()
        with self.known_hosts.open("a") as fh:
            fh.write(f"[{sshd.addr}]:{sshd.port} {pub[0]} {pub[1]}\n")

    def write_ssh_config(self) -> None:
        blocks = []
        for name, sshd in self.hosts.items():
            block = [f"Host {name}", f"  HostName {sshd.addr}", f"  Port {sshd.port}", "  User root",
                     f"  IdentityFile {self.client_key}", f"  UserKnownHostsFile {self.known_hosts}"]
            jump = getattr(sshd, "jump", None)
            if jump:
                block.append(f"  ProxyJump {jump}")
            blocks.append("\n".join(block))
        self.ssh_config.write_text("\n\n".join(blocks) + "\n")

    def stop(self) -> None:
        for sshd in self.hosts.values():
            sshd.kill_all()


def fast_settings(lab: Lab, **overrides: object) -> SSHSettings:
    """Settings for tests: the lab's config, and short timers so failures show up in seconds."""
    values: dict[str, object] = {"ssh_config": (str(lab.ssh_config),), "connect_timeout": 5.0,
                                 "keepalive_interval": 1.0, "ping_interval": 1.0, "silence_timeout": 5.0,
                                 "agent_keepalive_timeout": 10.0, "backoff_start": 0.3, "backoff_max": 1.0}
    values.update(overrides)
    return SSHSettings(**values)  # type: ignore[arg-type]
