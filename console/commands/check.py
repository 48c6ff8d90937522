"""`warroom check TARGET...`: the layered check, headless, in the spirit of httpstat.

For each target, runs DNS -> TCP -> TLS -> HTTP (as applicable; see
probes/layers.py) once or ``--count`` times, prints each layer's result and a
waterfall of phase bars, then one verdict line naming the first broken layer
with its original error. ``--json`` prints the Samples as JSON lines and then
one verdict JSON object per target (the line with a "verdict" key).

Exit status: 0 every target healthy; 1 some layer failed or is degraded (a
resolver failing or disagreeing counts: a script should hear about it); 2 bad
input (one line on stderr, before anything runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from console.diagnosis.check_text import layer_line, render_bars, render_summary, render_verdict
from console.diagnosis.verdict import judge
from console.settings.arguments import Parser
from console.settings.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, UsageError, interrupted_status
from console.settings.settings import CheckSettings, Settings, build_check_settings
from probes import dns as dns_probe
from probes.layers import check
from probes.redact import scrub, url_secrets
from probes.samples import Sample


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="warroom check",
        description="Check each TARGET layer by layer (DNS, TCP, TLS, HTTP) and name the first broken layer.",
        epilog="TARGET: host, host:port, [v6]:port or an http(s):// URL. Exit 0 healthy, 1 a layer failed or is "
               "degraded, 2 bad input.")
    parser.add_argument("targets", nargs="+", metavar="TARGET")
    parser.add_argument("--json", action="store_true", help="print Samples and verdicts as JSON lines")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="run the check N times (default 1)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S",
                        help="seconds allowed to each layer (default 3)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S",
                        help="with --count: seconds between checks (default 1)")
    parser.add_argument("--resolver", action="append", default=[], metavar="IP[:PORT]",
                        help="also ask this DNS resolver (repeatable)")
    parser.add_argument("--no-system-resolvers", action="store_true",
                        help="ask only the --resolver ones, not those of /etc/resolv.conf")
    parser.add_argument("--ca-file", metavar="FILE", help="trust these CA certificates instead of the system's")
    from console.settings.arguments import add_ssh_arguments

    # --host runs the same check from that SSH host (console/remote/check.py), one verdict per host and target.
    add_ssh_arguments(parser)
    for action in parser._actions:
        if action.dest == "hosts":
            action.help = ("run the check FROM this SSH host instead of here (repeatable: one verdict per host "
                           "and target); NAME may be a ~/.ssh/config alias")
    return parser


# ------------------------------------------------------------------- run


async def _run(settings: Settings) -> int:
    opts = settings.check or CheckSettings()
    resolvers = [dns_probe.parse_resolver(text) for text in opts.resolvers]
    worst = EXIT_OK
    for target_text in settings.targets:
        collected: list[Sample] = []
        rounds: list[list[Sample]] = []
        for attempt in range(opts.count):
            if attempt:
                await asyncio.sleep(opts.interval)
            this_round: list[Sample] = []
            async for sample in check(target_text, timeout=opts.timeout, resolvers=resolvers,
                                      system_resolvers=opts.system_resolvers, ca_file=opts.ca_file):
                this_round.append(sample)
                if settings.json:
                    print(sample.to_json(), flush=True)
            collected.extend(this_round)
            rounds.append(this_round)
            if not settings.json:
                label = this_round[0].target if this_round else target_text
                suffix = f"  (check {attempt + 1} of {opts.count})" if opts.count > 1 else ""
                print(f"{label}{suffix}")
                for sample in this_round:
                    print(layer_line(sample))
                for line in render_bars(this_round):
                    print(line)
                print(flush=True)
        verdict = judge(target_text, collected, attempts=opts.count)
        if not settings.json and opts.count > 1:
            for line in render_summary(rounds):
                print(line)
        print(verdict.to_json() if settings.json else render_verdict(verdict), flush=True)
        worst = max(worst, verdict.exit_code)
    return worst


def main(argv: list[str]) -> int:
    try:
        settings = build_check_settings(build_parser().parse_args(argv))
    except UsageError as exc:
        # A malformed URL may still hold a password: never echo it back.
        secrets = [secret for text in argv for secret in url_secrets(text)]
        print(f"warroom: check: {scrub(str(exc), secrets)} (see warroom check --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return run(settings)


def run(settings: Settings) -> int:
    if settings.hosts:
        from console.remote.check import run_remote

        return run_remote(settings)
    try:
        return asyncio.run(_run(settings))
    except KeyboardInterrupt as exc:
        return interrupted_status(exc)
    except BrokenPipeError:
        # The reader went away (`warroom check ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
