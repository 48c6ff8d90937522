"""Turn one measurement function into a probe: an endless, scheduled stream of Samples.

Every probe shares these rules, so they live here once: a fixed cadence that
does not drift, a hard timeout per measurement, and failures turned into error
Samples instead of exceptions, so one bad probe never stops another.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from probes.samples import (
    ERROR_EXCEPTION,
    ERROR_TIMEOUT,
    LOCAL_HOST,
    JSONValue,
    Sample,
    error_sample,
)

MeasureResult = Sample | Iterable[Sample]
T = TypeVar("T")

#: Set (true) in the fields of the Samples of a stream's first measurement: a cold start. It pays for this
#: process's own start - imports, the first connection pool, cold caches - and not only the target's (the
#: demo's healthy backend answers in 4 ms but its first request takes 70-190 ms). The store keeps such a
#: Sample out of percentiles, mean and jitter. Carried in the Sample, so a recording, a replay and an SSH
#: agent's stream say the same.
COLD_FIELD = "cold"


def mark_cold(sample: Sample) -> Sample:
    """``sample`` with COLD_FIELD set (a failed attempt has no time to leave out: it stays as it is)."""
    if not sample.ok:
        return sample
    return Sample(kind=sample.kind, target=sample.target, ts=sample.ts, fields={**sample.fields, COLD_FIELD: True},
                  host=sample.host, error=sample.error, message=sample.message)


@dataclass(frozen=True)
class ProbeSpec:
    """What to run: the same description drives a local probe and a remote agent's."""

    kind: str
    """Probe module name in probes/ ("tcp", "system", ...)."""
    target: str = ""
    """What to measure, as the user wrote it; "" for host-wide probes."""
    interval: float = 1.0
    """Seconds between the starts of two measurements."""
    timeout: float = 2.0
    """Hard limit for one measurement; past it the probe yields a timeout Sample."""
    options: dict[str, JSONValue] = field(default_factory=dict)
    """Probe-specific settings (JSON-safe so they can travel to a remote agent)."""

    def to_dict(self) -> dict[str, JSONValue]:
        return {"kind": self.kind, "target": self.target, "interval": self.interval,
                "timeout": self.timeout, "options": self.options}

    @classmethod
    def from_dict(cls, data: dict[str, JSONValue]) -> ProbeSpec:
        interval = data.get("interval", 1.0)
        timeout = data.get("timeout", 2.0)
        options = data.get("options") or {}
        if not isinstance(interval, (int, float)) or not isinstance(timeout, (int, float)):
            raise ValueError("interval and timeout must be numbers")
        if not isinstance(options, dict):
            raise ValueError("options must be an object")
        return cls(kind=str(data["kind"]), target=str(data.get("target", "")),
                   interval=float(interval), timeout=float(timeout), options=options)


class Watch(Protocol):
    """A probe that keeps a connection between measurements (a database, a metrics page)."""

    label: str

    async def measure(self, host: str) -> MeasureResult: ...


async def watched(spec: ProbeSpec, host: str, kind: str,
                  make_watch: Callable[[ProbeSpec], Watch]) -> AsyncIterator[Sample]:
    """``scheduled`` measurements of one Watch, closed when the stream ends.

    A spec the watch cannot use (a malformed DSN or URL) is one error Sample
    whose target is redacted: the bad text may hold a password.
    """
    from probes.redact import redact

    try:
        watch = make_watch(spec)
    except ValueError as exc:
        yield error_sample(kind, redact(spec.target), ERROR_EXCEPTION, str(exc), host=host)
        return
    try:
        async for sample in scheduled(lambda: watch.measure(host), kind=kind, target=watch.label,
                                      interval=spec.interval, timeout=spec.timeout, host=host):
            yield sample
    finally:
        close = getattr(watch, "close", None)
        if close is not None:
            await close()


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``await awaitable`` bounded by ``timeout`` seconds (None: unbounded); raises TimeoutError.

    Use this, not asyncio.wait_for: Python 3.11's wait_for can swallow a cancellation that
    arrives as the awaited thing finishes (CPython gh-86296), leaving a task that will not
    die - a probe's teardown hung 300 s, an SSH reader kept reading after `diagnose` ended.
    asyncio.timeout (3.11+) does not; older interpreters (an SSH host's) keep wait_for.
    """
    timeout_cm = getattr(asyncio, "timeout", None)
    if timeout_cm is None:
        return await asyncio.wait_for(awaitable, timeout)
    async with timeout_cm(timeout):
        return await awaitable


async def scheduled(
    measure: Callable[[], Awaitable[MeasureResult]],
    *,
    kind: str,
    target: str,
    interval: float,
    timeout: float,
    host: str = LOCAL_HOST,
    count: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Sample]:
    """Call ``measure`` every ``interval`` seconds and yield what it returns.

    A measurement that raises yields an "exception" Sample with the original
    message; one that runs past ``timeout`` is cancelled and yields a "timeout"
    Sample. Ticks missed while a measurement overran are skipped rather than
    fired in a burst, so a slow target is not hammered to catch up.
    """
    next_at = clock()
    done = 0
    while count is None or done < count:
        try:
            result = await within(measure(), timeout)
        except asyncio.TimeoutError:
            yield error_sample(kind, target, ERROR_TIMEOUT, f"no result within {timeout:g} s", host=host)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            yield error_sample(kind, target, ERROR_EXCEPTION, f"{type(exc).__name__}: {exc}", host=host)
        else:
            for sample in [result] if isinstance(result, Sample) else result:
                yield mark_cold(sample) if done == 0 else sample
        done += 1
        if count is not None and done >= count:
            return
        next_at += interval
        now = clock()
        if next_at < now and interval > 0:
            # Stay on the original grid: skip the ticks that passed during the overrun.
            next_at += math.ceil((now - next_at) / interval) * interval
        await asyncio.sleep(next_at - now)
