"""Which probes a target gets: the layers that make sense for what the user typed."""

from __future__ import annotations

import importlib.util

from probes.runtime import ProbeSpec
from probes.targets import parse_target


def probe_available(kind: str) -> bool:
    return importlib.util.find_spec(f"probes.{kind}") is not None


def specs_for_target(text: str, interval: float = 1.0) -> list[ProbeSpec]:
    """TCP for anything with a port; HTTP on top for URLs. Raises TargetError for bad text."""
    target = parse_target(text)
    specs: list[ProbeSpec] = []
    if target.tcp_port is not None:
        specs.append(ProbeSpec("tcp", text, interval=interval, timeout=min(2.0, max(interval, 0.5))))
    if target.is_url and probe_available("http"):
        specs.append(ProbeSpec("http", text, interval=interval, timeout=min(5.0, max(interval * 2, 1.0))))
    return specs


def host_specs(interval: float = 1.0) -> list[ProbeSpec]:
    """What plain `warroom` watches: this host only, no address probed."""
    return [ProbeSpec("system", "", interval=max(interval, 1.0), timeout=5.0)]
