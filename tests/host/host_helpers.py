"""Helpers for the host-pane tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

from console.engine.store import Store
from probes.runtime import ProbeSpec
from probes.samples import Sample


@contextlib.contextmanager
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield sock
    finally:
        sock.close()


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


async def run_probe(spec: ProbeSpec, store: Store | None = None, count: int = 1) -> list[Sample]:
    """Take ``count`` Samples from the real probe for ``spec`` (through the registry, as the hub does)."""
    from probes import registry

    out: list[Sample] = []
    stream = registry.stream(spec)
    try:
        async for sample in stream:
            out.append(sample)
            if store is not None:
                store.add(sample)
            if len(out) >= count:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return out


async def wait_until(predicate, timeout: float = 10.0, step: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
