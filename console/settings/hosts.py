"""Remote hosts: parse `--host [user@]name[:port]` and the config file's hosts section.

The config section (the lead's console/settings/config_file.py hands it over as a dict)::

    [ssh]
    ssh_config = "~/.ssh/config"        # optional; default: asyncssh's ~/.ssh/config
    known_hosts = "~/.ssh/known_hosts"  # optional; default: the config's UserKnownHostsFile or ~/.ssh/known_hosts
    accept_new_host_keys = false
    hosts = [
        "prod-1",                                 # a name from ~/.ssh/config, or user@host:port
        { name = "prod-2", address = "10.0.0.12", user = "ops", port = 22,
          python = "python3", sudo = false, jump = "bastion" },
    ]

Everything not given is left to ~/.ssh/config, as `ssh NAME` would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9_.%+-]+$")
_USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")


class HostConfigError(ValueError):
    """A host entry that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class HostConfig:
    """One SSH host to run probes on."""

    name: str
    """Display name (Samples' ``host``) and the destination looked up in ~/.ssh/config."""
    address: str | None = None
    """Connect here instead of ``name`` (config's HostName wins when this is None)."""
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    """Interpreter command on the host, e.g. "/usr/bin/python3.11"."""
    sudo: bool = False
    """Run privileged commands (tcpdump) with `sudo -n`; never prompts."""
    jump: str | None = None
    """ProxyJump override ("[user@]host[:port]", comma-separated for a chain)."""

    @property
    def destination(self) -> str:
        return self.address or self.name


@dataclass(frozen=True)
class SSHSettings:
    """How to connect and how patient to be; shared by every host."""

    ssh_config: tuple[str, ...] = ()
    """OpenSSH client config files; () means ~/.ssh/config (when it exists)."""
    known_hosts: str | None = None
    """known_hosts file to check against and to append accepted keys to."""
    accept_new_host_keys: bool = False
    """Like OpenSSH's StrictHostKeyChecking=accept-new: trust and record keys of unknown hosts.
    A *changed* key is always refused."""
    connect_timeout: float = 10.0
    keepalive_interval: float = 5.0
    """SSH-level keepalives: a dead link is noticed after about three of these."""
    ping_interval: float = 5.0
    """Agent-level pings; they also keep the agent's watchdog fed."""
    silence_timeout: float = 20.0
    """No line from the agent for this long: the link is treated as dropped."""
    agent_keepalive_timeout: float = 30.0
    """The agent exits after this long without a line from us (its watchdog)."""
    backoff_start: float = 1.0
    backoff_max: float = 30.0


@dataclass(frozen=True)
class HostsConfig:
    hosts: tuple[HostConfig, ...] = ()
    settings: SSHSettings = field(default_factory=SSHSettings)


def parse_host_arg(text: str) -> HostConfig:
    """Parse `[user@]name[:port]` (IPv6 as `[addr]:port`) as typed after --host."""
    raw = text.strip()
    if not raw:
        raise HostConfigError("empty --host: give [user@]name[:port]")
    user: str | None = None
    if "@" in raw:
        user, _, raw = raw.rpartition("@")
        if not _USER.match(user):
            raise HostConfigError(f"{text!r}: {user!r} is not a user name")
    port: int | None = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise HostConfigError(f"{text!r}: write IPv6 hosts as [addr]:port")
        port_text = rest[1:] if rest else ""
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:
        host, port_text = raw, ""
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise HostConfigError(f"{text!r}: port {port_text!r} is not a number in 1-65535")
        port = int(port_text)
    if not host or not (_NAME.match(host) or ":" in host):
        raise HostConfigError(f"{text!r}: {host!r} is not a host name")
    return HostConfig(name=host, user=user, port=port)


def _host_from_dict(entry: Mapping[str, Any]) -> HostConfig:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise HostConfigError(f"host entry {dict(entry)!r} has no name")
    base = parse_host_arg(name) if ("@" in name or ":" in name) else HostConfig(name=name)
    port = entry.get("port", base.port)
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535):
        raise HostConfigError(f"host {name!r}: port must be a number in 1-65535")
    for key in ("address", "user", "python", "jump"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            raise HostConfigError(f"host {name!r}: {key} must be a string")
    sudo = entry.get("sudo", False)
    if not isinstance(sudo, bool):
        raise HostConfigError(f"host {name!r}: sudo must be true or false")
    unknown = set(entry) - {"name", "address", "user", "port", "python", "sudo", "jump"}
    if unknown:
        raise HostConfigError(f"host {name!r}: unknown keys {sorted(unknown)}")
    return HostConfig(name=base.name, address=entry.get("address"), user=entry.get("user", base.user), port=port,
                      python=entry.get("python") or "python3", sudo=sudo, jump=entry.get("jump"))


def parse_hosts_section(section: Mapping[str, Any] | None) -> HostsConfig:
    """The [ssh] config section as HostsConfig; raises HostConfigError with a one-line reason."""
    if not section:
        return HostsConfig()
    hosts: list[HostConfig] = []
    for entry in section.get("hosts", []) or []:
        if isinstance(entry, str):
            hosts.append(parse_host_arg(entry))
        elif isinstance(entry, Mapping):
            hosts.append(_host_from_dict(entry))
        else:
            raise HostConfigError(f"hosts entries are names or tables, not {type(entry).__name__}")
    names = [h.name for h in hosts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise HostConfigError(f"host names must be unique: {', '.join(dupes)}")
    ssh_config = section.get("ssh_config")
    if isinstance(ssh_config, str):
        configs: tuple[str, ...] = (ssh_config,)
    elif isinstance(ssh_config, list) and all(isinstance(p, str) for p in ssh_config):
        configs = tuple(ssh_config)
    elif ssh_config is None:
        configs = ()
    else:
        raise HostConfigError("ssh_config must be a path or a list of paths")
    known_hosts = section.get("known_hosts")
    if known_hosts is not None and not isinstance(known_hosts, str):
        raise HostConfigError("known_hosts must be a path")
    accept_new = section.get("accept_new_host_keys", False)
    if not isinstance(accept_new, bool):
        raise HostConfigError("accept_new_host_keys must be true or false")
    return HostsConfig(hosts=tuple(hosts), settings=SSHSettings(ssh_config=configs, known_hosts=known_hosts,
                                                                accept_new_host_keys=accept_new))
