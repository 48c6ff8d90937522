"""`warroom check --host H TARGET...`: the layered check run FROM SSH hosts, through the agent.

Each host's agent runs the "layers" probe (probes/layers.py) ``--count`` times
per target with round markers, and the Samples come back through
console/cmd_remote.stream_remote. Output is the local check's (console/cmd_check.py)
for every (host, target): the layer lines and waterfall in text, or the Samples
and one verdict object (with a "host" key) per line with --json. Verdict lines
in text start with the host's name.

Exit status: 0 every (host, target) healthy; 1 a layer failed or is degraded,
or a host could not be used (one line on stderr says why: unknown host key,
auth, never connected); 2 bad input, before any connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from console import cmd_check
from console.cmd_remote import hosts_from_args, settings_from_args, stream_remote
from console.hosts_config import HostConfig, HostConfigError
from console.remote import CONNECTED, KIND_STATUS, TERMINAL_STATES
from console.verdict import judge
from probes import layers
from probes.redact import redact_url
from probes.runtime import ProbeSpec
from probes.samples import Sample

#: Connect, ship the agent and start: allowed on top of the checks' own time.
SESSION_ALLOWANCE_S = 15.0


def specs_for(args: argparse.Namespace) -> list[ProbeSpec]:
    options: dict[str, object] = {"count": args.count, "mark_rounds": True, "resolvers": list(args.resolver),
                                  "system_resolvers": not args.no_system_resolvers}
    if args.ca_file:
        options["ca_file"] = args.ca_file  # a path on the host: the check runs there
    return [ProbeSpec(layers.KIND, target, interval=args.interval, timeout=args.timeout,
                      options=options)  # type: ignore[arg-type]
            for target in dict.fromkeys(args.targets)]


def budget(args: argparse.Namespace) -> float:
    """The longest a run may take: every check may use all its layers' timeouts, plus the sessions."""
    per_check = args.timeout * len(layers.LAYERS) + 1.0
    return args.count * per_check + (args.count - 1) * args.interval + SESSION_ALLOWANCE_S


class _Series:
    """One (host, target): its rounds as they complete."""

    def __init__(self, host: str, target: str) -> None:
        self.host = host
        self.target = target
        self.current: list[Sample] = []
        self.rounds: list[list[Sample]] = []


def _print_round(series: _Series, samples: list[Sample], count: int) -> None:
    label = samples[0].target if samples else series.target
    suffix = f"  (check {len(series.rounds)} of {count})" if count > 1 else ""
    print(f"{label} from {series.host}{suffix}")
    for sample in samples:
        print(cmd_check._layer_line(sample))
    for line in cmd_check.render_bars(samples):
        print(line)
    print(flush=True)


async def run_async(args: argparse.Namespace, hosts: list[HostConfig]) -> int:
    settings = settings_from_args(args)
    specs = specs_for(args)
    series = {(h.name, s.target): _Series(h.name, s.target) for h in hosts for s in specs}
    by_label = {redact_url(s.target): s.target for s in specs}  # samples carry the masked target
    worst = cmd_check.EXIT_OK
    connected: set[str] = set()
    failed_hosts: set[str] = set()

    def finished(host: str) -> bool:
        return host in failed_hosts or all(len(s.rounds) >= args.count for (h, _), s in series.items() if h == host)

    deadline = time.monotonic() + budget(args)
    async for sample in stream_remote(hosts, specs, settings=settings, duration=max(0.1, deadline - time.monotonic())):
        if sample.kind == KIND_STATUS:
            state = sample.fields.get("state")
            if state == CONNECTED:
                connected.add(sample.host)
            elif state in TERMINAL_STATES:
                message = str(sample.message)
                named = message if message.startswith(f"{sample.host}: ") else f"{sample.host}: {message}"
                print(f"warroom: check: {named}", file=sys.stderr)
                failed_hosts.add(sample.host)
                worst = max(worst, cmd_check.EXIT_FAILED)
        elif sample.kind in layers.LAYERS or sample.kind == layers.KIND:
            one = series.get((sample.host, by_label.get(sample.target, sample.target)))
            if one is None or len(one.rounds) >= args.count:
                continue
            if sample.kind == layers.KIND and sample.ok and "round_end" in sample.fields:
                one.rounds.append(one.current)
                if not args.json:
                    _print_round(one, one.current, args.count)
                one.current = []
            else:
                one.current.append(sample)
                if args.json:
                    print(sample.to_json(), flush=True)
                if sample.kind == layers.KIND:  # the check ran out of time: that error is the round
                    one.rounds.append(one.current)
                    if not args.json:
                        _print_round(one, one.current, args.count)
                    one.current = []
        if all(finished(h.name) for h in hosts):
            break
    for one in series.values():
        if one.host in failed_hosts:
            continue
        if one.host not in connected:
            print(f"warroom: check: never connected to {one.host} within {budget(args):.0f} s "
                  "(is it up? is sshd listening?)", file=sys.stderr)
            failed_hosts.add(one.host)
            worst = max(worst, cmd_check.EXIT_FAILED)
            continue
        rounds = one.rounds + ([one.current] if one.current else [])
        verdict = judge(one.target, [s for r in rounds for s in r], attempts=max(1, len(rounds)))
        if not args.json and args.count > 1 and rounds:
            for line in cmd_check.render_summary(rounds):
                print(line)
        if args.json:
            print(json.dumps({**verdict.to_dict(), "host": one.host}, separators=(",", ":"), ensure_ascii=False),
                  flush=True)
        else:
            print(f"{one.host}: {cmd_check.render_verdict(verdict)}", flush=True)
        worst = max(worst, verdict.exit_code if len(rounds) >= args.count else cmd_check.EXIT_FAILED)
    return worst


def run_remote(args: argparse.Namespace) -> int:
    """Entry point from cmd_check.main once the arguments are valid."""
    try:
        hosts = hosts_from_args(args)
    except HostConfigError as exc:
        print(f"warroom: check: {exc} (see warroom check --help)", file=sys.stderr)
        return cmd_check.EXIT_BAD_INPUT
    try:
        return asyncio.run(run_async(args, hosts))
    except KeyboardInterrupt:
        return 130
