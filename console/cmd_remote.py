"""Headless remote probing: `warroom --host H --json [--duration S] [TARGET...]`.

The lead's console/run.py calls ``run_json(args)`` when ``args.hosts`` and
``args.json`` are set; ``stream_remote`` is the reusable part (any caller that
wants the merged Sample stream of several hosts). Runnable on its own too:
``python -m console.cmd_remote --host H --json TARGET``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

from console.hosts_config import HostConfig, HostConfigError, SSHSettings, parse_host_arg
from console.remote import KIND_STATUS, TERMINAL_STATES, RemoteHost
from probes.runtime import ProbeSpec
from probes.samples import Sample
from probes.targets import TargetError, parse_target

EXIT_OK = 0
#: A host could not be used at all (auth, host key, agent) or never connected during the run.
EXIT_HOST_FAILED = 1
EXIT_BAD_INPUT = 2


def default_specs(targets: Sequence[str], interval: float = 1.0) -> list[ProbeSpec]:
    """What a host runs by default: the same layers as a local target, and the host's own pressure.

    Vantage points compare like with like only if every host runs the same plan.
    """
    from console.probe_plan import host_specs, specs_for_target

    specs: list[ProbeSpec] = []
    for target in targets:
        specs += specs_for_target(target, interval)
    return specs + host_specs(interval, remote=True)


def settings_from_args(args: argparse.Namespace, base: SSHSettings | None = None) -> SSHSettings:
    """Command-line SSH options on top of the config file's [ssh] settings."""
    base = base or SSHSettings()
    ssh_config = getattr(args, "ssh_config", None)
    return SSHSettings(
        **{**base.__dict__,
           "ssh_config": (ssh_config,) if ssh_config else base.ssh_config,
           "accept_new_host_keys": bool(getattr(args, "accept_new_host_keys", False)) or base.accept_new_host_keys})


def hosts_from_args(args: argparse.Namespace, configured: Sequence[HostConfig] = ()) -> list[HostConfig]:
    """--host values; a name that the config file lists keeps that entry's settings."""
    by_name = {h.name: h for h in configured}
    hosts: list[HostConfig] = []
    for text in getattr(args, "hosts", []) or []:
        parsed = parse_host_arg(text)
        known = by_name.get(parsed.name)
        if known is not None and parsed.user is None and parsed.port is None:
            parsed = known
        if any(h.name == parsed.name for h in hosts):
            raise HostConfigError(f"--host {parsed.name} given twice")
        hosts.append(parsed)
    return hosts


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
                sample = await asyncio.wait_for(queue.get(), timeout)
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


async def run_json_async(args: argparse.Namespace, out: TextIO | None = None, *,
                         configured: Sequence[HostConfig] = (), base: SSHSettings | None = None) -> int:
    out = out or sys.stdout
    try:
        hosts = hosts_from_args(args, configured)
        for target in args.targets:
            parse_target(target)
    except (HostConfigError, TargetError) as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not hosts:
        print("warroom: give at least one --host [user@]name[:port]", file=sys.stderr)
        return EXIT_BAD_INPUT
    specs = default_specs(args.targets, getattr(args, "interval", 1.0) or 1.0)
    settings = settings_from_args(args, base)
    status = EXIT_OK
    connected: set[str] = set()
    async for sample in stream_remote(hosts, specs, settings=settings, duration=args.duration):
        if sample.kind == KIND_STATUS and sample.fields.get("state") == "connected":
            connected.add(sample.host)
        try:
            out.write(sample.to_json() + "\n")
            out.flush()
        except BrokenPipeError:
            return EXIT_OK
        if sample.kind == KIND_STATUS and sample.fields.get("state") in TERMINAL_STATES:
            # The one line a person reads when a host could not be used at all.
            print(f"warroom: {sample.host}: {sample.message}", file=sys.stderr)
            status = EXIT_HOST_FAILED
    never = [h.name for h in hosts if h.name not in connected]
    if never and status == EXIT_OK:
        print(f"warroom: never connected to {', '.join(never)} (see the host_status samples for why)",
              file=sys.stderr)
        status = EXIT_HOST_FAILED
    return status


def run_json(args: argparse.Namespace, **kwargs: object) -> int:
    """Entry point for console/run.py: `warroom --host H --json ...`."""
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_json_async(args, **kwargs))  # type: ignore[arg-type]
    return 130


def main(argv: list[str]) -> int:
    from console.cli import UsageError, build_parser

    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"warroom: {exc} (see warroom --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.json:
        print("warroom: this runner streams JSON only: add --json", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_json(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
