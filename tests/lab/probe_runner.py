"""Run probes in a separate process (inside a lab namespace, optionally as another user) and print Samples.

Tests start it with ``Namespace.python([...])`` to see what a probe does as an
unprivileged user: modules are imported as root first, then the process drops
to ``--uid``/``--gid`` with no supplementary groups, which also drops every
capability (CAP_NET_RAW included), exactly as for a normal login.

Usage: probe_runner.py [--uid N --gid N] --seconds S --count N SPEC_JSON...
Prints one Sample JSON per line; stops after ``--count`` samples per spec or
``--seconds``, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures.thread  # noqa: F401 - imported lazily by getaddrinfo; after setuid it cannot be read
import contextlib
import json
import os
import sys

from probes import registry
from probes.runtime import ProbeSpec


async def collect(spec: ProbeSpec, count: int) -> None:
    seen = 0
    async for sample in registry.stream(spec):
        print(sample.to_json(), flush=True)
        seen += 1
        if seen >= count:
            return


async def run(specs: list[ProbeSpec], count: int, seconds: float) -> None:
    tasks = [asyncio.create_task(collect(spec, count)) for spec in specs]
    _done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    specs = [ProbeSpec.from_dict(json.loads(text)) for text in args.specs]
    for spec in specs:
        registry.probe_module(spec.kind)  # import while still privileged to read the files
    if args.gid is not None:
        os.setgroups([])
        os.setgid(args.gid)
    if args.uid is not None:
        os.setuid(args.uid)
    asyncio.run(run(specs, args.count, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
