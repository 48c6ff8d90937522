"""The hub owns every running probe and routes their Samples to the store and listeners.

Probes are async iterators of Samples. The hub runs each in its own task,
restarts one that ends or raises (with exponential backoff and jitter), and
never lets one probe's failure reach another. Listeners (recorder, diagnosis)
see every Sample after the store has it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from console.store import Store
from probes import registry
from probes.runtime import ProbeSpec
from probes.samples import ERROR_EXCEPTION, LOCAL_HOST, Sample, error_sample

StreamFactory = Callable[[], AsyncIterator[Sample]]
Listener = Callable[[Sample], None]


@dataclass
class RunningStream:
    name: str
    factory: StreamFactory
    restart: bool
    kind: str
    target: str
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    spec: ProbeSpec | None = field(default=None)


class Hub:
    """Runs probe streams and publishes their Samples."""

    def __init__(self, store: Store, *, backoff_start: float = 1.0, backoff_max: float = 30.0) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self.streams: dict[str, RunningStream] = {}
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max

    def publish(self, sample: Sample) -> None:
        self.store.add(sample)
        for listener in self.listeners:
            listener(sample)

    def add_stream(self, name: str, factory: StreamFactory, *, restart: bool = True,
                   kind: str = "stream", target: str = "") -> RunningStream:
        """Run ``factory()``'s stream under ``name``, replacing any stream of that name."""
        self.remove(name)
        running = RunningStream(name=name, factory=factory, restart=restart, kind=kind, target=target)
        running.task = asyncio.get_running_loop().create_task(self._run(running), name=f"warroom:{name}")
        self.streams[name] = running
        return running

    def start_probe(self, spec: ProbeSpec, host: str = LOCAL_HOST) -> RunningStream:
        """Start a local probe; raises UnknownProbe or TargetError before anything runs."""
        registry.probe_module(spec.kind)
        name = f"{host}/{spec.kind}/{spec.target}"
        running = self.add_stream(name, lambda: registry.stream(spec, host), kind=spec.kind, target=spec.target)
        running.spec = spec
        return running

    def remove(self, name: str) -> bool:
        running = self.streams.pop(name, None)
        if running is None:
            return False
        if running.task is not None:
            running.task.cancel()
        return True

    def remove_target(self, target: str) -> int:
        names = [n for n, r in self.streams.items() if r.target == target]
        for name in names:
            self.remove(name)
        return len(names)

    async def _run(self, running: RunningStream) -> None:
        delay = self.backoff_start
        while True:
            try:
                async for sample in running.factory():
                    self.publish(sample)
                    delay = self.backoff_start
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.publish(error_sample(running.kind, running.target, ERROR_EXCEPTION,
                                          f"probe stopped: {type(exc).__name__}: {exc}"))
            if not running.restart:
                return
            running.restarts += 1
            # Jitter keeps many failing probes from restarting in lockstep.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def stop(self) -> None:
        """Cancel every stream and wait until they have all ended."""
        tasks = [r.task for r in self.streams.values() if r.task is not None]
        self.streams.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
