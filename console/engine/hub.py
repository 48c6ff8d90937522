"""The hub owns every running probe and routes their Samples to the store and listeners.

Probes are async iterators of Samples. The hub runs each in its own task,
restarts one that ends or raises (with exponential backoff and jitter), and
never lets one probe's failure reach another. Listeners (recorder, diagnosis)
see every Sample after the store has it.

Probes can run on a loop of their own (``ProbeLoop``, a thread). The console
does that: a frame of Textual rendering holds its event loop for tens of ms,
and a connect timed on that loop would carry the wait in its RTT (measured:
median 39.6 ms instead of 0.97 ms on loopback). Samples still reach the store
on the hub's home loop only, so the store and widgets stay single-threaded.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from console.engine.store import Store
from probes import registry
from probes.runtime import ProbeSpec
from probes.samples import ERROR_EXCEPTION, LOCAL_HOST, Sample, error_sample

StreamFactory = Callable[[], AsyncIterator[Sample]]
#: How long stop() waits for cancelled probes to finish their clean-up.
STOP_TIMEOUT_S = 5.0
Listener = Callable[[Sample], None]
T = TypeVar("T")
#: Samples from the probe loop travel home together, at most this long after the first of them:
#: one wake-up of the UI's loop (and one GIL hand-over) per batch instead of one per Sample. The
#: panes draw once a second, so a tenth of a second is not seen; 50 targets send ~170 Samples a second.
DELIVER_S = 0.1


class ProbeLoop:
    """An asyncio loop in a daemon thread, where probes run free of the UI's pauses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="warroom-probes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def close(self) -> None:
        """Cancel what still runs there (server handlers, stragglers), then stop the thread."""

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop).result(timeout=3)
            except Exception:  # a task that will not die must not keep the console from exiting
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class RunningStream:
    name: str
    factory: StreamFactory
    restart: bool
    kind: str
    target: str
    task: asyncio.Task[None] | None = None
    """The task on the probe loop (set there, read there)."""
    restarts: int = 0
    spec: ProbeSpec | None = field(default=None)


class Hub:
    """Runs probe streams and publishes their Samples."""

    def __init__(self, store: Store, *, backoff_start: float = 1.0, backoff_max: float = 30.0,
                 probe_loop: ProbeLoop | None = None) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self.streams: dict[str, RunningStream] = {}
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.probe_loop = probe_loop
        self._home: asyncio.AbstractEventLoop | None = None
        self._outbox: list[Sample] = []
        """Samples emitted on the probe loop, not yet sent home (touched on the probe loop only)."""

    # -- where things run ------------------------------------------------------

    def _loops(self) -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        """(home loop, probe loop); the same loop when no ProbeLoop was given."""
        if self._home is None:
            self._home = asyncio.get_running_loop()
        return self._home, self.probe_loop.loop if self.probe_loop else self._home

    def call_on_probe_loop(self, func: Callable[[], object]) -> None:
        """Call ``func`` on the probe loop (for objects that live there, such as SSH channels)."""
        home, probes = self._loops()
        if probes is home:
            func()
        else:
            probes.call_soon_threadsafe(func)  # FIFO: a cancel queued after a spawn runs after it

    async def run_on_probe_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` where the probes run (servers the probes talk to belong there too)."""
        home, probes = self._loops()
        if probes is home:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, probes))

    # -- samples -----------------------------------------------------------------

    def publish(self, sample: Sample) -> None:
        """Store and fan out a Sample; call on the home loop (probes use _emit)."""
        self.store.add(sample)
        for listener in self.listeners:
            listener(sample)

    def _emit(self, sample: Sample) -> None:
        home, probes = self._loops()
        if probes is home:
            self.publish(sample)
            return
        self._outbox.append(sample)
        if len(self._outbox) == 1:
            probes.call_later(DELIVER_S, self._deliver)

    def _deliver(self) -> None:
        """On the probe loop: send what the outbox holds home, in one wake-up of the home loop."""
        batch, self._outbox = self._outbox, []
        home = self._home
        if batch and home is not None and not home.is_closed():
            home.call_soon_threadsafe(self._publish_all, batch)

    def _publish_all(self, batch: list[Sample]) -> None:
        for sample in batch:
            try:
                self.publish(sample)
            except Exception as exc:  # one listener's bug must not lose the rest of the batch
                asyncio.get_running_loop().call_exception_handler(
                    {"message": f"publishing a {sample.kind} Sample failed", "exception": exc})

    # -- streams -----------------------------------------------------------------

    def add_stream(self, name: str, factory: StreamFactory, *, restart: bool = True,
                   kind: str = "stream", target: str = "") -> RunningStream:
        """Run ``factory()``'s stream under ``name``, replacing any stream of that name."""
        self.remove(name)
        running = RunningStream(name=name, factory=factory, restart=restart, kind=kind, target=target)
        self.streams[name] = running

        def spawn() -> None:
            running.task = asyncio.get_running_loop().create_task(self._run(running), name=f"warroom:{name}")

        self.call_on_probe_loop(spawn)
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
        self.call_on_probe_loop(lambda: running.task.cancel() if running.task is not None else None)
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
                    self._emit(sample)
                    delay = self.backoff_start
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reported as a Sample, then restarted
                self._emit(error_sample(running.kind, running.target, ERROR_EXCEPTION,
                                        f"probe stopped: {type(exc).__name__}: {exc}"))
            if not running.restart:
                return
            running.restarts += 1
            # Jitter keeps many failing probes from restarting in lockstep.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def stop(self) -> None:
        """Cancel every stream and wait until they have all ended."""
        streams = list(self.streams.values())
        self.streams.clear()

        async def cancel_all() -> None:
            tasks = [r.task for r in streams if r.task is not None]
            for task in tasks:
                task.cancel()
            if tasks:
                # Bounded: a probe whose clean-up hangs must not keep the console from exiting.
                await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            self._deliver()  # the last Samples reach the store (and the recording) before stop returns

        await self.run_on_probe_loop(cancel_all())

