"""The merged Sample stream of several SSH hosts running the same probes.

``stream_remote`` is what `warroom --host H --json`, `warroom check --host`
and any other headless caller use; the console runs each host as a hub stream
instead (console/ui/app.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from console.remote.host import KIND_STATUS, TERMINAL_STATES, RemoteHost
from console.settings.hosts import HostConfig, SSHSettings
from probes.runtime import ProbeSpec, within
from probes.samples import Sample


async def stream_remote(hosts: Sequence[HostConfig], specs: Sequence[ProbeSpec], *,
                        settings: SSHSettings | None = None, duration: float | None = None,
                        stop_when_all_failed: bool = True) -> AsyncIterator[Sample]:
    """The merged Sample stream (host_status included) of ``specs`` run on every host.

    Ends after ``duration`` seconds, or when every host is in a state retrying
    cannot fix (auth failed, host key unknown/changed). Leaving the loop closes
    every connection, so the agents see EOF and exit.
    """
    queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=10000)
    remotes = [RemoteHost(h, specs, settings) for h in hosts]

    async def pump(remote: RemoteHost) -> None:
        async for sample in remote.stream():
            await queue.put(sample)

    tasks = [asyncio.get_running_loop().create_task(pump(r), name=f"warroom:ssh:{r.name}") for r in remotes]
    deadline = None if duration is None else time.monotonic() + duration
    failed: set[str] = set()
    try:
        while True:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return
            try:
                sample = await within(queue.get(), timeout)
            except asyncio.TimeoutError:
                return
            yield sample
            if sample.kind == KIND_STATUS and sample.fields.get("state") in TERMINAL_STATES:
                failed.add(sample.host)
                if stop_when_all_failed and len(failed) == len(remotes):
                    return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
