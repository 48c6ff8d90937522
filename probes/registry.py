"""Find the probe for a ProbeSpec by its kind, importing its module only when used.

Lazy imports keep start-up fast: the capture probe pulls in scapy, the http
probe h11 and dnspython, and a console that runs neither should not pay for them.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import AsyncIterator
from typing import Protocol

from probes.redact import redact_url, scrub, url_secrets
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
    """The Sample stream for ``spec``; raises UnknownProbe for a kind we do not have.

    Whatever the probe, a password or token in the target never leaves in a Sample: the
    target is masked and the secrets scrubbed from the message (the probe itself still
    used them to authenticate).
    """
    inner = probe_module(spec.kind).stream(spec, host)
    secrets = url_secrets(spec.target)
    if not secrets and redact_url(spec.target) == spec.target:
        return inner
    return _redacted(inner, redact_url(spec.target), secrets)


async def _redacted(inner: AsyncIterator[Sample], label: str, secrets: list[str]) -> AsyncIterator[Sample]:
    async for sample in inner:
        message = scrub(sample.message, secrets) if sample.message else sample.message
        if sample.target != label or message != sample.message:
            sample = dataclasses.replace(sample, target=label if sample.target != "" else "", message=message)
        yield sample
