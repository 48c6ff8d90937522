"""Which probes a target gets: the layers that make sense for what the user typed."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from console.settings.pools import PoolsConfig
from probes.runtime import ProbeSpec
from probes.targets import is_ip_literal, parse_target


def probe_available(kind: str) -> bool:
    return importlib.util.find_spec(f"probes.{kind}") is not None


def specs_for_target(text: str, interval: float = 1.0, *, echo_interval: float | None = None) -> list[ProbeSpec]:
    """The layers that apply, bottom up. Raises TargetError for bad text.

    DNS for names (not IP literals), TCP for anything with a port, TLS for
    https URLs, HTTP for URLs. DNS and TLS change slowly: they run at a fifth
    of the rate so a name server or TLS terminator is not hammered.
    ``echo_interval`` sends ICMP echoes at another rate than the rest (a
    short diagnosis wants enough echoes to count loss in seconds).
    """
    target = parse_target(text)
    specs: list[ProbeSpec] = []
    if not is_ip_literal(target.host) and probe_available("dns"):
        specs.append(ProbeSpec("dns", text, interval=interval * 5, timeout=3.0))
    if probe_available("icmp"):
        # ICMP beside TCP: an echo that answers while connects fail points at the port, not the path.
        echo = interval if echo_interval is None else echo_interval
        specs.append(ProbeSpec("icmp", text, interval=echo, timeout=min(2.0, max(interval, 0.5))))
    if target.tcp_port is not None:
        specs.append(ProbeSpec("tcp", text, interval=interval, timeout=min(2.0, max(interval, 0.5))))
    if target.scheme == "https" and probe_available("tls"):
        specs.append(ProbeSpec("tls", text, interval=interval * 5, timeout=3.0))
    if target.is_url and probe_available("http"):
        specs.append(ProbeSpec("http", text, interval=interval, timeout=min(5.0, max(interval * 2, 1.0))))
    return specs


def host_specs(interval: float = 1.0, pools: PoolsConfig | None = None, *,
               remote: bool = False) -> list[ProbeSpec]:
    """What plain `warroom` watches: this host only, no address probed.

    System pressure, the socket table and pools seen from the sockets; PostgreSQL,
    Redis and /metrics views only where the config names them. A remote host
    sends the socket summary but not the full table (it is ~100 bytes per socket
    per second over the SSH channel).
    """
    specs = [ProbeSpec("system", "", interval=max(interval, 1.0), timeout=5.0)]
    for spec in (pools or PoolsConfig(interval=max(interval, 1.0))).specs():
        if remote and spec.kind == "conns":
            spec = ProbeSpec(spec.kind, spec.target, spec.interval, spec.timeout, {**spec.options, "table": False})
        specs.append(spec)
    return specs


def remote_specs(targets: Sequence[str], interval: float = 1.0) -> list[ProbeSpec]:
    """What an SSH host runs: the same layers as a local target, and the host's own pressure.

    Vantage points compare like with like only if every host runs the same plan.
    """
    specs: list[ProbeSpec] = []
    for target in targets:
        specs += specs_for_target(target, interval)
    return specs + host_specs(interval, remote=True)
