"""Find the probe for a ProbeSpec by its kind, importing its module only when used.

Lazy imports keep start-up fast: the capture probe pulls in scapy, the http
probe httpx, and a console that runs neither should not pay for them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from typing import Protocol

from probes.runtime import ProbeSpec
from probes.samples import LOCAL_HOST, Sample

_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


class ProbeModule(Protocol):
    def stream(self, spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]: ...


class UnknownProbe(ValueError):
    """No module in probes/ provides a probe of that kind."""


def probe_module(kind: str) -> ProbeModule:
    if not _KIND.match(kind):
        raise UnknownProbe(f"not a probe name: {kind!r}")
    try:
        module = importlib.import_module(f"probes.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"probes.{kind}":
            raise UnknownProbe(f"no probe called {kind!r}") from None
        raise
    if not hasattr(module, "stream"):
        raise UnknownProbe(f"probes.{kind} is not a probe (it has no stream())")
    return module  # type: ignore[return-value]


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """The Sample stream for ``spec``; raises UnknownProbe for a kind we do not have."""
    return probe_module(spec.kind).stream(spec, host)
