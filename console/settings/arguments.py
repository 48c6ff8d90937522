"""The command line's parsers. They only parse; ``settings.build_settings`` validates and merges the file."""

from __future__ import annotations

import argparse

from console import __version__
from console.settings.errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so errors stay one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def console_parser() -> argparse.ArgumentParser:
    """`warroom [TARGET...]`: the console, or the Sample stream with --json."""
    parser = Parser(
        prog="warroom",
        description="Live incident console: why can't the service reach its backend?",
        epilog="sub-commands: warroom demo | warroom check TARGET... | warroom diagnose TARGET... | "
               "warroom capture FILE.pcap | warroom replay FILE|DIR | warroom diff BEFORE AFTER | warroom incidents | "
               "warroom report INCIDENT "
               "(each has --help). With no target, warroom watches this host only and probes no address.",
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="host:port, [v6]:port or http(s):// URL to probe")
    parser.add_argument("--version", action="version", version=f"warroom {__version__}")
    parser.add_argument("--json", action="store_true",
                        help="open no screen: print the Sample stream as JSON lines")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="with --json: stop after this many seconds")
    add_probe_arguments(parser)
    parser.add_argument("--record", metavar="FILE",
                        help="record to FILE instead of a new folder under ~/.local/share/warroom/incidents "
                             "(.zst or .gz compress it; any other name is plain JSON lines)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not record this run (every run records by default)")
    parser.add_argument("--record-max-mb", type=float, metavar="MB",
                        help="cap the recording on disk (default 200 MB); the oldest segments go first")
    add_retention_arguments(parser)
    parser.add_argument("--theme", metavar="NAME",
                        help="warroom-dark, warroom-light, warroom-contrast or warroom-colorblind")
    parser.add_argument("--share", action="store_true",
                        help="start in share mode (key S): bigger figures; addresses, hosts and users as aliases")
    parser.add_argument("--incident", metavar="NAME",
                        help="start or resume incident NAME: the five-step checklist, timeline and report, kept "
                             "in its folder under the data directory (warroom incidents lists them)")
    add_ssh_arguments(parser)
    return parser


def diagnose_parser() -> argparse.ArgumentParser:
    """`warroom diagnose TARGET...`: the same probes and findings engine, headless, then the ranked findings."""
    parser = Parser(
        prog="warroom diagnose",
        description="Probe each TARGET for a while and print the ranked findings: the cause per target and "
                    "layer, with evidence, the why-chain and what is ruled out.",
        epilog="TARGET: host:port, [v6]:port or an http(s):// URL; with none, this host only (its sockets, pools, "
               "limits). Exit 0 no warning or critical finding, 1 there is one, 2 bad input.")
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--duration", type=float, default=20.0, metavar="SECONDS",
                        help="how long to probe before printing (default 20)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per finding, ranked (first_seen/last_seen are wall-clock seconds)")
    parser.add_argument("--until-found", action="store_true",
                        help="stop as soon as a warning or critical finding about a target is on top "
                             "(at most --duration)")
    parser.add_argument("--history", action="store_true",
                        help="also list the findings that appeared and cleared during the run")
    add_probe_arguments(parser)
    add_ssh_arguments(parser)
    return parser


def add_probe_arguments(parser: argparse.ArgumentParser) -> None:
    """What to watch besides the targets: shared by the console and the headless commands that probe."""
    parser.add_argument("--interval", type=float, default=None, metavar="SECONDS",
                        help="seconds between probes of one target (default 1)")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=MAX[,process=P][,remote=H:P]",
                        help="declare a client pool's maximum (repeatable): its gauge shows utilization")
    parser.add_argument("--expect-listen", action="append", default=[], type=int, metavar="PORT",
                        help="a port that must be listening on this host (repeatable)")
    parser.add_argument("--capture", metavar="IFACE",
                        help="capture packet headers on IFACE (any, lo, eth0 ...); needs root or CAP_NET_RAW")
    parser.add_argument("--capture-filter", metavar="BPF",
                        help="BPF filter for --capture (default: everything but SSH)")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config (default: ~/.config/warroom/config.toml when it exists)")


def add_retention_arguments(parser: argparse.ArgumentParser) -> None:
    """How long automatic recordings are kept (pruned at start; named incidents never are)."""
    parser.add_argument("--keep-days", type=float, metavar="DAYS",
                        help="remove automatic recordings last written more than DAYS ago, at start (default 30; "
                             "0 keeps them however old; config: record_keep_days); --incident folders are never "
                             "removed")
    parser.add_argument("--keep-mb", type=float, metavar="MB",
                        help="remove the oldest automatic recordings while they take more than MB in all "
                             "(default 2048; 0: no limit; config: record_keep_mb)")


def add_ssh_arguments(parser: argparse.ArgumentParser) -> None:
    """Remote hosts (console/remote/); shared with sub-commands that probe from hosts too."""
    parser.add_argument("--host", action="append", default=[], metavar="[USER@]NAME[:PORT]", dest="hosts",
                        help="also probe from this SSH host (repeatable); NAME may be a ~/.ssh/config alias")
    parser.add_argument("--accept-new-host-keys", action="store_true",
                        help="trust and record host keys of hosts never seen before (a changed key is still refused)")
    parser.add_argument("--ssh-config", metavar="PATH", help="OpenSSH client config to use instead of ~/.ssh/config")


def serve_parser() -> argparse.ArgumentParser:
    """`warroom serve`: the running console in a browser, read-only, for everyone on the call."""
    parser = Parser(prog="warroom serve",
                    description="Serve the running console to browsers (textual-serve): each browser is a read-only "
                                "viewer of it, with addresses and names as aliases unless --no-redact.")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                        help="address to listen on (default 127.0.0.1); any other needs --token")
    parser.add_argument("--token", metavar="T", help="viewers must open http://ADDR:PORT/?token=T (8+ characters)")
    parser.add_argument("--no-redact", action="store_true",
                        help="show viewers the real addresses, host and user names (default: share mode's aliases)")
    parser.add_argument("--console", metavar="SOCKET",
                        help="the console's live feed to follow (default: the newest running console)")
    parser.add_argument("--theme", metavar="NAME", help="the viewers' theme")
    parser.add_argument("--viewer", action="store_true", help=argparse.SUPPRESS)  # one browser's app (internal)
    return parser
