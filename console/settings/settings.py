"""The one Settings object: the command line on top of the config file, checked once.

``build_settings(args)`` is the only place that reads the parsed arguments and
the config file together; every command receives the Settings it returns.
A problem is a ``UsageError`` whose text is the CLI's one line (exit status 2).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from console.settings import pools as pools_settings
from console.settings.config_file import Config, ConfigError, hosts_section, load_config, pools_section
from console.settings.errors import UsageError
from console.settings.hosts import HostConfig, HostConfigError, SSHSettings, parse_host_arg, parse_hosts_section
from console.settings.pools import PoolsConfig
from probes.runtime import ProbeSpec
from probes.targets import TargetError, parse_target

DEFAULT_INTERVAL_S = 1.0
#: Probing faster than this measures the console, not the network; and it floods the target.
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 3600.0
#: A headless run longer than a week is a mistake, not an incident.
MAX_DURATION_S = 7 * 24 * 3600.0
#: Probes a second the console keeps up with (bench/probe_cost.py: 50 targets at 1 Hz cost ~1% of a core).
MAX_PROBES_PER_S = 500.0
#: `warroom check --count` at most.
MAX_CHECK_COUNT = 1000
#: Automatic (unnamed) recordings are kept this many days after they were last written ...
DEFAULT_KEEP_DAYS = 30.0
#: ... and, oldest first, only while they fit in this many megabytes together.
DEFAULT_KEEP_MB = 2048.0


@dataclass(frozen=True)
class RetentionSettings:
    """How long the automatic recordings (one folder per run) are kept; named incidents are never removed."""

    keep_days: float | None = DEFAULT_KEEP_DAYS
    """Remove an automatic recording last written more than this many days ago (None: however old)."""
    keep_mb: float | None = DEFAULT_KEEP_MB
    """Remove the oldest automatic recordings while they all take more than this (None: no limit)."""
    days_from: str = "default"
    """Where keep_days came from, for the line that says what was removed: "default", the option or the key."""
    mb_from: str = "default"

    def describe(self) -> str:
        """"kept 30 days and 2,048 MB in all" (what an engineer reads in the prune line and the list)."""
        days = f"{self.keep_days:g} days" if self.keep_days is not None else "however old"
        size = f"{self.keep_mb:,.0f} MB in all" if self.keep_mb is not None else "however large"
        return f"kept {days} and {size}"


@dataclass
class Settings:
    """Everything a command needs to run, from the command line and the config file."""

    targets: list[str] = field(default_factory=list)
    """Targets as typed (command line after the file's, duplicates dropped)."""
    interval: float = DEFAULT_INTERVAL_S
    """Seconds between probes of one target."""
    theme: str | None = None
    """The screen's theme; None is the default theme."""
    record: str | None = None
    """Record to this file (--record FILE); None: a new folder per run under the incidents directory."""
    no_record: bool = False
    """Record nothing (--no-record, or ``record = false`` in the config file)."""
    record_max_mb: float = 200.0
    """The recording's cap on disk; its oldest segments are dropped past it."""
    json: bool = False
    """No screen: the Sample stream (or a command's results) as JSON lines."""
    duration: float | None = None
    """Headless runs stop after this many seconds (None: until interrupted)."""
    hosts: list[HostConfig] = field(default_factory=list)
    """SSH hosts that run the same probes."""
    ssh: SSHSettings = field(default_factory=SSHSettings)
    pools: PoolsConfig = field(default_factory=PoolsConfig)
    """Declared pools, server views, thresholds and expected listeners."""
    capture: ProbeSpec | None = None
    """The packet capture to run, when asked for."""
    config_path: Path | None = None
    """The config file that was read, if any."""
    demo: bool = False
    """Start the built-in misbehaving loopback servers and watch them."""
    source: str | None = None
    """The file a command reads: the recording to replay, the capture to summarise."""
    check: CheckSettings | None = None
    """`warroom check`'s own options."""
    capture_file: CaptureFileSettings | None = None
    """`warroom capture`'s own options."""
    incident: str | None = None
    """`warroom --incident NAME`: the incident to start or resume (its folder under the data directory)."""
    secrets: list[str] = field(default_factory=list)
    """Literal strings the config marks secret (``secrets``, and the values of ``secret_env`` variables),
    masked in everything an incident writes."""
    diagnose: DiagnoseSettings | None = None
    """`warroom diagnose`'s own options."""

    share: bool = False
    """Start the console in share mode (bigger figures, aliases for addresses and names)."""
    serve: ServeSettings | None = None
    """`warroom serve`'s own options."""
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    """What start-up (and `warroom incidents --prune`) removes of the automatic recordings."""


@dataclass(frozen=True)
class CaptureFileSettings:
    """How `warroom capture` summarises a file (or a short live capture)."""

    file: str | None = None
    interface: str | None = None
    bpf: str | None = None
    duration: float = 10.0
    top: int = 10
    dns_ports: tuple[int, ...] = ()
    """() means the default DNS ports."""
    export_headers: str | None = None
    force: bool = False
    ring: int = 1000
    pane: bool = False


@dataclass(frozen=True)
class CheckSettings:
    """How `warroom check` runs each target's layered check."""

    count: int = 1
    timeout: float = 3.0
    interval: float = 1.0
    """Seconds between checks with count > 1."""
    resolvers: tuple[str, ...] = ()
    """Extra resolvers as typed (IP[:PORT]), already validated."""
    system_resolvers: bool = True
    ca_file: str | None = None


@dataclass(frozen=True)
class ServeSettings:
    """How `warroom serve` puts the console in a browser."""

    port: int = 8765
    bind: str = "127.0.0.1"
    """Loopback by default; anything else needs a token."""
    token: str | None = None
    """Viewers must bring it (?token=T in the address); required off loopback."""
    redact: bool = True
    """Viewers get share mode's aliases (--no-redact turns that off)."""
    console: str | None = None
    """The live feed socket of the console to follow (None: the newest running console)."""

    @property
    def loopback(self) -> bool:
        return is_loopback(self.bind)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost": addresses no other machine can reach."""
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def build_serve_settings(args: argparse.Namespace) -> Settings:
    """`warroom serve`'s Settings; off loopback without a token is refused (UsageError, exit 2)."""
    import ipaddress

    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    bind = args.bind.strip("[]")
    if bind != "localhost":
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            raise UsageError(f"--bind takes an IP address of this machine (127.0.0.1, ::1, 0.0.0.0 ...), "
                             f"not {args.bind!r}") from None
    if args.token is not None and len(args.token) < 8:
        raise UsageError("--token must be at least 8 characters (anyone who guesses it sees the incident)")
    serve = ServeSettings(port=args.port, bind=bind, token=args.token, redact=not args.no_redact,
                          console=args.console)
    if not serve.loopback and not serve.token:
        raise UsageError(f"--bind {args.bind} lets other machines watch the incident: give --token T too "
                         "(viewers then open http://ADDRESS:PORT/?token=T)")
    _check_theme(getattr(args, "theme", None))
    return Settings(theme=getattr(args, "theme", None), serve=serve)


@dataclass(frozen=True)
class DiagnoseSettings:
    """How `warroom diagnose` runs: until when, and what it prints besides the current findings."""

    until_found: bool = False
    """Stop as soon as a warning or critical finding is on top."""
    history: bool = False
    """Also print the findings that appeared and cleared during the run."""


#: `warroom diagnose` sends ICMP echoes this many times faster than the other probes: loss is counted in echoes,
#: and a 20 s diagnosis needs tens of them to tell 10% loss from bad luck (ping -i 0.2 is what a person runs).
DIAGNOSE_ECHO_SPEEDUP = 5.0


def build_diagnose_settings(args: argparse.Namespace) -> Settings:
    """`warroom diagnose`'s Settings: the console's (config file included) plus its own options."""
    from probes.targets import TargetError, parse_target

    settings = build_settings(args)
    for text in settings.targets:
        try:
            parse_target(text)
        except TargetError as exc:
            raise UsageError(f"bad target: {exc}") from None
    # The faster echoes count against the probe-rate cap as well.
    rate = probes_per_second(settings.targets, settings.interval) * (3.4 + DIAGNOSE_ECHO_SPEEDUP - 1) / 3.4
    if rate > MAX_PROBES_PER_S:
        fit = int(MAX_PROBES_PER_S * settings.interval / (3.4 + DIAGNOSE_ECHO_SPEEDUP - 1))
        raise UsageError(f"{len(settings.targets)} targets every {settings.interval:g} s is about {rate:,.0f} probes "
                         f"a second with diagnose's faster echoes, more than the {MAX_PROBES_PER_S:.0f} warroom "
                         f"keeps up with: diagnose at most {fit} targets at this interval, or raise --interval")
    settings.diagnose = DiagnoseSettings(until_found=bool(args.until_found), history=bool(args.history))
    return settings


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def hosts_from_args(texts: Sequence[str], configured: Sequence[HostConfig] = ()) -> list[HostConfig]:
    """--host values; a name that the config file lists keeps that entry's settings."""
    by_name = {h.name: h for h in configured}
    hosts: list[HostConfig] = []
    for text in texts:
        parsed = parse_host_arg(text)
        known = by_name.get(parsed.name)
        if known is not None and parsed.user is None and parsed.port is None:
            parsed = known
        if any(h.name == parsed.name for h in hosts):
            raise HostConfigError(f"--host {parsed.name} given twice")
        hosts.append(parsed)
    return hosts


def ssh_from_args(args: argparse.Namespace, base: SSHSettings | None = None) -> SSHSettings:
    """Command-line SSH options on top of the config file's [ssh] settings."""
    base = base or SSHSettings()
    ssh_config = getattr(args, "ssh_config", None)
    return replace(base, ssh_config=(ssh_config,) if ssh_config else base.ssh_config,
                   accept_new_host_keys=bool(getattr(args, "accept_new_host_keys", False))
                   or base.accept_new_host_keys)


def build_settings(args: argparse.Namespace, *, use_config: bool = True) -> Settings:
    """Settings for a command from its parsed arguments (and the config file when ``use_config``).

    Reads only the attributes the command's parser defined; the others keep their defaults.
    """
    config = _load(getattr(args, "config", None)) if use_config else Config()
    settings = Settings(config_path=config.path)
    # The command line wins over the file; targets from both are probed.
    settings.targets = list(dict.fromkeys([*config.targets, *getattr(args, "targets", [])]))
    interval = getattr(args, "interval", None)
    settings.interval = interval if interval is not None else (config.interval or DEFAULT_INTERVAL_S)
    settings.theme = getattr(args, "theme", None) or config.theme
    _record(settings, args, config)
    settings.retention = retention(args, config)
    settings.json = bool(getattr(args, "json", False))
    settings.duration = getattr(args, "duration", None)
    settings.share = bool(getattr(args, "share", False))
    settings.interval = seconds(settings.interval, "--interval", MIN_INTERVAL_S, MAX_INTERVAL_S)
    if settings.duration is not None:
        settings.duration = seconds(settings.duration, "--duration", 0.0, MAX_DURATION_S, above=True)
    for text in settings.targets:
        try:
            parse_target(text)
        except TargetError as exc:
            raise UsageError(f"bad target: {exc}") from None
    check_probe_rate(settings.targets, settings.interval)
    _check_theme(settings.theme)
    _hosts(settings, args, config)
    _incident(settings, args, config)
    _pools(settings, args, config)
    _capture(settings, args, config)
    return settings


def seconds(value: object, name: str, low: float, high: float, *, above: bool = False) -> float:
    """A number of seconds in [low, high] (above: more than low), finite; UsageError says the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{name} must be a number of seconds, not {value!r}")
    too_low = value <= low if above else value < low
    if too_low or value > high:
        low_text = f"more than {low:g}" if above else f"at least {low:g}"
        raise UsageError(f"{name} must be {low_text} and at most {high:g} seconds, not {value:g}")
    return float(value)


def probes_per_second(targets: Sequence[str], interval: float) -> float:
    """Roughly how many probes a second the targets cost (icmp + tcp + http each interval; dns, tls at a fifth)."""
    return len(targets) * 3.4 / interval


def check_probe_rate(targets: Sequence[str], interval: float) -> None:
    rate = probes_per_second(targets, interval)
    if rate > MAX_PROBES_PER_S:
        needed = probes_per_second(targets, 1.0) / MAX_PROBES_PER_S
        fit = int(MAX_PROBES_PER_S * interval / 3.4)
        raise UsageError(f"{len(targets)} targets every {interval:g} s is about {rate:,.0f} probes a second, more "
                         f"than the {MAX_PROBES_PER_S:.0f} warroom keeps up with: probe at most {fit} targets at "
                         f"this interval, or raise --interval to {needed:.1f} s or more")


def _record(settings: Settings, args: argparse.Namespace, config: Config) -> None:
    path = getattr(args, "record", None)
    settings.record = path or (config.record if isinstance(config.record, str) else None)
    settings.no_record = bool(getattr(args, "no_record", False)) or (config.record is False and not path)
    if path and getattr(args, "no_record", False):
        raise UsageError("--record and --no-record contradict each other: give one")
    cap = getattr(args, "record_max_mb", None)
    if cap is not None and not (math.isfinite(cap) and 0 < cap < 1e7):
        raise UsageError(f"--record-max-mb must be a number of megabytes above 0, not {cap:g}")
    settings.record_max_mb = cap if cap is not None else (config.record_max_mb or settings.record_max_mb)


def retention(args: argparse.Namespace, config: Config) -> RetentionSettings:
    """--keep-days / --keep-mb on top of the file's record_keep_days / record_keep_mb; 0 means no limit."""
    values: dict[str, tuple[float | None, str]] = {}
    for option, key, default, unit, high in (("keep_days", "record_keep_days", DEFAULT_KEEP_DAYS, "days", 36500.0),
                                             ("keep_mb", "record_keep_mb", DEFAULT_KEEP_MB, "megabytes", 1e12)):
        given = getattr(args, option, None)
        if given is not None:
            flag = "--" + option.replace("_", "-")
            if not (math.isfinite(given) and 0 <= given <= high):
                raise UsageError(f"{flag} must be a number of {unit} from 0 (no limit) to {high:g}, not {given:g}")
            values[option] = (given or None, flag)
        elif getattr(config, key) is not None:
            values[option] = (getattr(config, key) or None, key)
        else:
            values[option] = (default, "default")
    return RetentionSettings(keep_days=values["keep_days"][0], keep_mb=values["keep_mb"][0],
                             days_from=values["keep_days"][1], mb_from=values["keep_mb"][1])


def build_retention_settings(args: argparse.Namespace) -> RetentionSettings:
    """The retention of a command that reads nothing else of the config file (`warroom demo`)."""
    return retention(args, _load(getattr(args, "config", None)))


def _check_theme(name: str | None) -> None:
    if name is not None:
        from themes import THEME_NAMES

        if name not in THEME_NAMES:
            raise UsageError(f"unknown theme {name!r}: choose one of {', '.join(THEME_NAMES)}")


def _hosts(settings: Settings, args: argparse.Namespace, config: Config) -> None:
    section = hosts_section(config)
    texts = list(getattr(args, "hosts", []) or [])
    try:
        ssh = parse_hosts_section(section)
        settings.hosts = hosts_from_args(texts, ssh.hosts) if texts else list(ssh.hosts)
    except HostConfigError as exc:
        raise UsageError(str(exc)) from None
    settings.ssh = ssh_from_args(args, ssh.settings)
    for path in settings.ssh.ssh_config:
        if not os.path.isfile(os.path.expanduser(path)):
            raise UsageError(f"SSH config file {path} does not exist: give the path of an OpenSSH client config "
                             "(or leave --ssh-config out to use ~/.ssh/config)")


def _incident(settings: Settings, args: argparse.Namespace, config: Config) -> None:
    import re

    name = getattr(args, "incident", None)
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise UsageError(f"--incident {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')")
    settings.incident = name
    values, envs = config.sections.get("secrets", []), config.sections.get("secret_env", [])
    if not all(isinstance(v, str) for v in [*values, *envs]):
        raise UsageError("config: secrets and secret_env must be lists of strings")
    settings.secrets = [v for v in values if v] + [os.environ[e] for e in envs if os.environ.get(e)]


def _pools(settings: Settings, args: argparse.Namespace, config: Config) -> None:
    try:
        pools = pools_settings.parse(pools_section(config))
        pools.pools += [pools_settings.pool_from_cli(text) for text in getattr(args, "pool", [])]
    except pools_settings.PoolsConfigError as exc:
        raise UsageError(str(exc)) from None
    expect = list(getattr(args, "expect_listen", []))
    pools.expect_listen += [p for p in expect if p not in pools.expect_listen]
    if any(not 1 <= p <= 65535 for p in pools.expect_listen):
        raise UsageError("--expect-listen takes a port in 1-65535")
    pools.interval = max(pools.interval, settings.interval)
    settings.pools = pools


def _capture(settings: Settings, args: argparse.Namespace, config: Config) -> None:
    interface = getattr(args, "capture", None)
    bpf = getattr(args, "capture_filter", None)
    section = dict(config.sections.get("capture", {}))
    if bpf is not None and not interface and not section.get("enabled"):
        raise UsageError("--capture-filter goes with --capture IFACE (or [capture] enabled = true in the config): "
                         "say which interface to capture on")
    if not (interface or bpf or section.get("enabled")):
        return
    from probes import capture

    if interface:
        section["interface"] = interface
    if bpf:
        section["filter"] = bpf
    try:
        settings.capture = capture.spec_from_config(section)
    except ValueError as exc:
        raise UsageError(f"capture: {exc}") from None
    options = settings.capture.options
    problem = capture.check_interface_and_filter(str(options.get("interface", "any")),
                                                 str(options.get("filter") or "") or None,
                                                 str(options.get("tcpdump") or "tcpdump"))
    if problem is not None:
        raise UsageError(f"capture: {problem}")


def build_check_settings(args: argparse.Namespace) -> Settings:
    """The check's Settings from its arguments; raises UsageError with the one-line reason."""
    from probes import dns as dns_probe

    for text in args.targets:
        try:
            parse_target(text)
        except TargetError as exc:
            raise UsageError(str(exc)) from None
    if not 1 <= args.count <= MAX_CHECK_COUNT:
        raise UsageError(f"--count must be 1-{MAX_CHECK_COUNT}, not {args.count}")
    if not 0 < args.timeout <= 300:
        raise UsageError(f"--timeout must be more than 0 and at most 300 seconds, not {args.timeout:g}")
    if args.interval < 0:
        raise UsageError("--interval cannot be negative")
    try:
        for text in args.resolver:
            dns_probe.parse_resolver(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.no_system_resolvers and not args.resolver:
        raise UsageError("--no-system-resolvers needs at least one --resolver IP[:PORT]")
    if args.ca_file and not args.hosts and not os.path.isfile(args.ca_file):  # with --host: a path there
        raise UsageError(f"--ca-file {args.ca_file!r}: no such file")
    try:
        hosts = hosts_from_args(args.hosts)
    except HostConfigError as exc:
        raise UsageError(str(exc)) from None
    return Settings(targets=list(args.targets), json=args.json, hosts=hosts, ssh=ssh_from_args(args),
                    check=CheckSettings(count=args.count, timeout=args.timeout, interval=args.interval,
                                        resolvers=tuple(args.resolver), system_resolvers=not args.no_system_resolvers,
                                        ca_file=args.ca_file))


def build_capture_settings(args: argparse.Namespace) -> Settings:
    """`warroom capture`'s Settings; UsageError ("capture: ...") says what is wrong before any file is touched."""
    problem = _bad_capture_option(args)
    if problem is not None:
        raise UsageError(f"capture: {problem}")
    return Settings(json=args.json, source=args.file, capture_file=CaptureFileSettings(
        file=args.file, interface=args.interface, bpf=args.bpf, duration=args.duration, top=args.top,
        dns_ports=tuple(args.dns_port or ()), export_headers=args.export_headers, force=args.force,
        ring=args.ring, pane=args.pane))


def _bad_capture_option(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, before any file is read or written."""
    if not math.isfinite(args.duration) or not 0 < args.duration <= 3600:
        return f"--duration must be more than 0 and at most 3600 seconds, not {args.duration:g}"
    if args.top < 1:
        return f"--top must be 1 or more, not {args.top}"
    bad_port = next((p for p in args.dns_port or [] if not 1 <= p <= 65535), None)
    if bad_port is not None:
        return f"--dns-port must be a port in 1-65535, not {bad_port}"
    if not 1 <= args.ring <= 1_000_000:
        return f"--ring must be 1-1000000 packets, not {args.ring}"
    if args.export_headers:
        out = os.path.realpath(args.export_headers)
        if args.file is not None and os.path.exists(args.file) and out == os.path.realpath(args.file):
            return f"--export-headers {args.export_headers} is the capture being read: write the headers elsewhere"
        if os.path.exists(out) and not args.force:
            return f"--export-headers {args.export_headers} exists: choose a new file, or add --force to replace it"
    if args.interface is not None:
        from probes.capture import check_interface_and_filter

        return check_interface_and_filter(args.interface, args.bpf)
    return None
