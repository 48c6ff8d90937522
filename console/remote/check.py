"""`warroom check --host H TARGET...`: the layered check run FROM SSH hosts, through the agent.

Each host's agent runs the "layers" probe (probes/layers.py) ``--count`` times
per target with round markers, and the Samples come back through
console/remote/stream.py:stream_remote. Output is the local check's (console/commands/check.py)
for every (host, target): the layer lines and waterfall in text, or the Samples
and one verdict object (with a "host" key) per line with --json. Verdict lines
in text start with the host's name.

Exit status: 0 every (host, target) healthy; 1 a layer failed or is degraded,
or a host could not be used (one line on stderr says why: unknown host key,
auth, never connected); 2 bad input, before any connection.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from console.diagnosis import check_text
from console.diagnosis.verdict import judge
from console.remote.host import CONNECTED, KIND_STATUS, TERMINAL_STATES
from console.remote.stream import stream_remote
from console.settings.errors import EXIT_FAILED, EXIT_OK, interrupted_status
from console.settings.hosts import HostConfig
from console.settings.settings import CheckSettings, Settings
from probes import layers
from probes.redact import redact_url
from probes.runtime import ProbeSpec
from probes.samples import Sample

#: Connect, ship the agent and start: allowed on top of the checks' own time.
SESSION_ALLOWANCE_S = 15.0


def specs_for(targets: list[str], opts: CheckSettings) -> list[ProbeSpec]:
    options: dict[str, object] = {"count": opts.count, "mark_rounds": True, "resolvers": list(opts.resolvers),
                                  "system_resolvers": opts.system_resolvers}
    if opts.ca_file:
        options["ca_file"] = opts.ca_file  # a path on the host: the check runs there
    return [ProbeSpec(layers.KIND, target, interval=opts.interval, timeout=opts.timeout,
                      options=options)  # type: ignore[arg-type]
            for target in dict.fromkeys(targets)]


def budget(opts: CheckSettings) -> float:
    """The longest a run may take: every check may use all its layers' timeouts, plus the sessions."""
    per_check = opts.timeout * len(layers.LAYERS) + 1.0
    return opts.count * per_check + (opts.count - 1) * opts.interval + SESSION_ALLOWANCE_S


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
        print(check_text.layer_line(sample))
    for line in check_text.render_bars(samples):
        print(line)
    print(flush=True)


async def run_async(settings: Settings, hosts: list[HostConfig]) -> int:
    opts = settings.check or CheckSettings()
    specs = specs_for(settings.targets, opts)
    series = {(h.name, s.target): _Series(h.name, s.target) for h in hosts for s in specs}
    by_label = {redact_url(s.target): s.target for s in specs}  # samples carry the masked target
    worst = EXIT_OK
    connected: set[str] = set()
    failed_hosts: set[str] = set()

    def finished(host: str) -> bool:
        return host in failed_hosts or all(len(s.rounds) >= opts.count for (h, _), s in series.items() if h == host)

    deadline = time.monotonic() + budget(opts)
    remaining = max(0.1, deadline - time.monotonic())
    async for sample in stream_remote(hosts, specs, settings=settings.ssh, duration=remaining):
        if sample.kind == KIND_STATUS:
            state = sample.fields.get("state")
            if state == CONNECTED:
                connected.add(sample.host)
            elif state in TERMINAL_STATES:
                message = str(sample.message)
                named = message if message.startswith(f"{sample.host}: ") else f"{sample.host}: {message}"
                print(f"warroom: check: {named}", file=sys.stderr)
                failed_hosts.add(sample.host)
                worst = max(worst, EXIT_FAILED)
        elif sample.kind in layers.LAYERS or sample.kind == layers.KIND:
            one = series.get((sample.host, by_label.get(sample.target, sample.target)))
            if one is None or len(one.rounds) >= opts.count:
                continue
            if sample.kind == layers.KIND and sample.ok and "round_end" in sample.fields:
                one.rounds.append(one.current)
                if not settings.json:
                    _print_round(one, one.current, opts.count)
                one.current = []
            else:
                one.current.append(sample)
                if settings.json:
                    print(sample.to_json(), flush=True)
                if sample.kind == layers.KIND:  # the check ran out of time: that error is the round
                    one.rounds.append(one.current)
                    if not settings.json:
                        _print_round(one, one.current, opts.count)
                    one.current = []
        if all(finished(h.name) for h in hosts):
            break
    for one in series.values():
        if one.host in failed_hosts:
            continue
        if one.host not in connected:
            print(f"warroom: check: never connected to {one.host} within {budget(opts):.0f} s "
                  "(is it up? is sshd listening?)", file=sys.stderr)
            failed_hosts.add(one.host)
            worst = max(worst, EXIT_FAILED)
            continue
        rounds = one.rounds + ([one.current] if one.current else [])
        verdict = judge(one.target, [s for r in rounds for s in r], attempts=max(1, len(rounds)))
        if not settings.json and opts.count > 1 and rounds:
            for line in check_text.render_summary(rounds):
                print(line)
        if settings.json:
            print(json.dumps({**verdict.to_dict(), "host": one.host}, separators=(",", ":"), ensure_ascii=False),
                  flush=True)
        else:
            print(f"{one.host}: {check_text.render_verdict(verdict)}", flush=True)
        worst = max(worst, verdict.exit_code if len(rounds) >= opts.count else EXIT_FAILED)
    return worst


def run_remote(settings: Settings) -> int:
    """Entry point from console/commands/check.py once the Settings are built."""
    try:
        return asyncio.run(run_async(settings, settings.hosts))
    except KeyboardInterrupt as exc:
        return interrupted_status(exc)
