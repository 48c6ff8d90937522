"""Plain `warroom [TARGET...]`: the live console, or the JSON stream with --json."""

from __future__ import annotations

import argparse
import asyncio
import sys

from console import pools_config
from console.cli import UsageError
from console.config import ConfigError, hosts_section, load_config, pools_section
from console.hosts_config import HostConfig, HostConfigError, parse_hosts_section
from console.hub import Hub
from console.pools_config import PoolsConfig
from console.probe_plan import host_specs, specs_for_target
from console.recorder import Recorder
from console.store import Store
from probes.runtime import ProbeSpec
from probes.samples import Sample
from probes.targets import TargetError


def plan(targets: list[str], interval: float, pools: PoolsConfig | None = None) -> list[ProbeSpec]:
    """All probes for the command line, or a UsageError naming the first bad target."""
    specs = host_specs(interval, pools)
    for text in targets:
        try:
            specs += specs_for_target(text, interval)
        except TargetError as exc:
            raise UsageError(f"bad target: {exc}") from None
    return specs


async def stream_json(specs: list[ProbeSpec], duration: float | None, recorder: Recorder | None) -> int:
    """Print every Sample as one JSON line until ``duration`` passes (or forever)."""
    hub = Hub(Store(per_series=16))  # nothing reads the store here: keep it tiny
    out = sys.stdout

    def emit(sample: Sample) -> None:
        out.write(sample.to_json() + "\n")
        out.flush()

    hub.listeners.append(emit)
    if recorder is not None:
        hub.listeners.append(recorder)
    for spec in specs:
        hub.start_probe(spec)
    try:
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        await hub.stop()
    return 0


def run_main(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    # The command line wins over the file; targets from both are probed.
    args.targets = list(dict.fromkeys([*config.targets, *args.targets]))
    args.interval = args.interval if args.interval is not None else (config.interval or 1.0)
    args.theme = args.theme or config.theme
    args.record = args.record or config.record
    if args.interval <= 0:
        raise UsageError("--interval must be more than 0 seconds")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be more than 0 seconds")
    if args.duration is not None and not args.json:
        raise UsageError("--duration goes with --json")
    remote_hosts: list[HostConfig] = []
    ssh_settings = None
    section = hosts_section(config)
    if getattr(args, "hosts", None) or section.get("hosts"):
        # Only now: asyncssh costs ~150 ms of start-up that a local console need not pay.
        from console.cmd_remote import hosts_from_args, settings_from_args

        try:
            ssh = parse_hosts_section(section)
            remote_hosts = hosts_from_args(args, ssh.hosts) or list(ssh.hosts)
        except HostConfigError as exc:
            raise UsageError(str(exc)) from None
        ssh_settings = settings_from_args(args, ssh.settings)
    try:
        pools = pools_config.parse(pools_section(config))
        pools.pools += [pools_config.pool_from_cli(text) for text in args.pool]
    except pools_config.PoolsConfigError as exc:
        raise UsageError(str(exc)) from None
    pools.expect_listen += [p for p in args.expect_listen if p not in pools.expect_listen]
    if any(not 1 <= p <= 65535 for p in pools.expect_listen):
        raise UsageError("--expect-listen takes a port in 1-65535")
    pools.interval = max(pools.interval, args.interval)
    capture_spec = None
    capture_section = dict(config.sections.get("capture", {}))
    if args.capture or args.capture_filter or capture_section.get("enabled"):
        from probes import capture

        if args.capture:
            capture_section["interface"] = args.capture
        if args.capture_filter:
            capture_section["filter"] = args.capture_filter
        try:
            capture_spec = capture.spec_from_config(capture_section)
        except ValueError as exc:
            raise UsageError(f"capture: {exc}") from None
    specs = plan(args.targets, args.interval, pools)
    if capture_spec is not None:
        specs.append(capture_spec)
    if remote_hosts and args.json:
        from console.cmd_remote import run_json

        # `warroom --host H --json`: that host's Samples (the local ones are one --json without --host away).
        args.hosts = [h.name for h in remote_hosts]
        return run_json(args, configured=remote_hosts, base=ssh_settings)
    recorder = None
    if args.record:
        try:
            recorder = Recorder(args.record)
        except OSError as exc:
            raise UsageError(f"cannot write the recording {args.record}: {exc.strerror}") from None
    try:
        if args.json:
            try:
                return asyncio.run(stream_json(specs, args.duration, recorder))
            except BrokenPipeError:
                return 0  # the reader (head, jq) went away: that is a normal end
        from console.app import AppConfig, create_app
        from themes import DEFAULT_THEME, THEME_NAMES

        theme = args.theme or DEFAULT_THEME
        if theme not in THEME_NAMES:
            raise UsageError(f"unknown theme {theme!r}: choose one of {', '.join(THEME_NAMES)}")
        app = create_app(AppConfig(targets=list(args.targets), interval=args.interval, theme=theme,
                                   record=recorder, remote_hosts=remote_hosts, ssh_settings=ssh_settings,
                                   pools=pools, capture=capture_spec))
        return int(app.run() or 0)
    finally:
        if recorder is not None:
            recorder.close()
