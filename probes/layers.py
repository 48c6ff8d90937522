"""The layered check: DNS -> TCP -> TLS -> HTTP for one target, stopping at the first broken layer.

"Cannot reach the backend" is answered by the lowest layer that fails, so the
check walks up the stack and yields each layer's Samples as it goes (kinds
"dns", "tcp", "tls", "http"; every Sample's target is the target as typed,
secrets masked). Which layers apply:

- host            DNS only (there is no port to connect to)
- host:port       DNS + TCP
- http:// URL     DNS + TCP + HTTP
- https:// URL    DNS + TCP + TLS + HTTP

An IP literal skips DNS. The address DNS returned (first resolver with an
answer: hosts file, then system resolvers, then the user's) is the one every
later layer connects to, so TCP, TLS and HTTP test the same server DNS
pointed at, and HTTP never resolves the name a second time (its dns_ms is
the DNS layer's time).

The same function runs locally and, through the agent, remotely; as a probe
(kind "layers") it repeats the check every ``interval`` seconds. Options: as
probes.dns (resolvers, system_resolvers, hosts_file, resolv_conf) plus ca_file,
count (stop after that many checks) and mark_rounds (after each check, one
"layers" Sample with fields {"round_end": n, "layers": samples in it}; a
check that ran out of time is one "layers" error Sample instead).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from probes import dns as dns_probe
from probes import http as http_probe
from probes import tls as tls_probe
from probes.redact import redact_url
from probes.runtime import ProbeSpec, scheduled
from probes.samples import LOCAL_HOST, JSONValue, Sample, error_sample
from probes.targets import Target, is_ip_literal, parse_target
from probes.tcp import connect_once, failure_kind, timing_fields

KIND = "layers"
LAYERS = ("dns", "tcp", "tls", "http")


def layers_for(target: Target) -> tuple[str, ...]:
    """The layers that apply to ``target``, in the order they are checked."""
    out: list[str] = [] if is_ip_literal(target.host) else ["dns"]
    if target.scheme == "https":
        out += ["tcp", "tls", "http"]
    elif target.scheme == "http":
        out += ["tcp", "http"]
    elif target.port is not None:
        out.append("tcp")
    return tuple(out)


def chosen_address(dns_samples: Sequence[Sample]) -> tuple[str | None, float | None]:
    """The address later layers connect to, and how long the lookup that gave it took."""
    for sample in dns_samples:
        addresses = sample.fields.get("addresses")
        if isinstance(addresses, list) and addresses:
            took = sample.fields.get("time_ms")
            return str(addresses[0]), float(took) if isinstance(took, (int, float)) else None
    return None, None


async def _tcp(target: Target, label: str, address: str, timeout: float, host: str,
               resolve_ms: float | None) -> Sample:
    """One connect to the address the DNS layer gave (no second lookup: its time is the DNS layer's)."""
    port = target.tcp_port
    assert port is not None
    endpoint = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    fields: dict[str, JSONValue] = {"endpoint": endpoint, "address": address}
    if resolve_ms is not None and not is_ip_literal(target.host):
        fields["resolve_ms"] = resolve_ms
    try:
        rtt_ms = await connect_once(address, port, timeout)
    except Exception as exc:  # every failure is evidence, classified by the TCP probe's rules
        return error_sample("tcp", label, failure_kind(exc), str(exc) or type(exc).__name__, host=host,
                            fields=fields)
    return Sample("tcp", label, time.time(), host=host, fields=timing_fields(rtt_ms) | fields)


async def check(target_text: str, *, timeout: float = 3.0, resolvers: Sequence[dns_probe.Resolver] = (),
                system_resolvers: bool = True, ca_file: str | None = None,
                hosts_file: str = dns_probe.HOSTS_FILE, resolv_conf: str = dns_probe.RESOLV_CONF,
                host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """Yield each applicable layer's Samples, lowest first; stop after the first broken layer.

    ``timeout`` bounds each layer separately (each DNS question, the connect,
    the handshake, the whole HTTP exchange), so one check ends within about
    four timeouts even against a server that stalls everything.
    """
    target = parse_target(target_text)
    label = redact_url(target_text)
    layers = layers_for(target)
    address: str | None = target.host
    dns_ms: float | None = 0.0 if is_ip_literal(target.host) else None
    if "dns" in layers:
        dns_samples = await dns_probe.resolve(target_text, timeout=timeout, resolvers=resolvers,
                                              system=system_resolvers, hosts_file=hosts_file,
                                              resolv_conf=resolv_conf, host=host)
        for sample in dns_samples:
            yield sample
        address, dns_ms = chosen_address(dns_samples)
        if address is None:
            return
    assert address is not None
    if "tcp" in layers:
        tcp_sample = await _tcp(target, label, address, timeout, host, dns_ms)
        yield tcp_sample
        if not tcp_sample.ok:
            return
    if "tls" in layers:
        tls_sample = await tls_probe.measure(target_text, timeout, ca_file=ca_file, address=address, host=host,
                                             label=label)
        yield tls_sample
        if not tls_sample.ok:
            return
    if "http" in layers:
        yield await http_probe.measure(target_text, timeout, address=address, ca_file=ca_file, dns_ms=dns_ms,
                                       host=host, label=label)


async def check_once(target_text: str, **kwargs: object) -> list[Sample]:
    """All Samples of one layered check, as a list (for the scheduled probe and for tests)."""
    return [sample async for sample in check(target_text, **kwargs)]  # type: ignore[arg-type]


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    """The check as a periodic probe; its hard limit allows every layer its own timeout."""
    parse_target(spec.target)
    resolvers = dns_probe.resolvers_from_options(spec.options)
    ca_file = spec.options.get("ca_file")
    hosts_file = spec.options.get("hosts_file", dns_probe.HOSTS_FILE)
    resolv_conf = str(spec.options.get("resolv_conf") or dns_probe.RESOLV_CONF)
    label = redact_url(spec.target)
    mark_rounds = spec.options.get("mark_rounds") is True
    count = spec.options.get("count")
    rounds = 0

    async def one_check() -> list[Sample]:
        nonlocal rounds
        samples = await check_once(spec.target, timeout=spec.timeout, resolvers=resolvers,
                                   system_resolvers=spec.options.get("system_resolvers", True) is not False,
                                   ca_file=str(ca_file) if ca_file else None, hosts_file=str(hosts_file or ""),
                                   resolv_conf=resolv_conf, host=host)
        rounds += 1
        if mark_rounds:
            # A reader of the merged stream (warroom check --host) cannot otherwise tell where one check ends.
            samples.append(Sample(KIND, label, time.time(), host=host,
                                  fields={"round_end": rounds, "layers": len(samples)}))
        return samples

    return scheduled(one_check, kind=KIND, target=label, interval=spec.interval,
                     timeout=spec.timeout * len(LAYERS) + 1.0, host=host,
                     count=int(count) if isinstance(count, int) and not isinstance(count, bool) and count > 0
                     else None)


def options_from_config(section: dict[str, object]) -> dict[str, JSONValue]:
    """ProbeSpec options for dns/tls/http/layers from the config file's ``[layers]`` section.

    Shape (every key optional)::

        [layers]
        resolvers = ["127.0.0.53", "10.0.0.2:5353"]   # asked besides the system's
        system_resolvers = true
        ca_file = "/etc/ssl/private-ca.pem"

    Raises ValueError naming the bad key, so the console can print one line.
    """
    known = {"resolvers", "system_resolvers", "ca_file"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"[layers]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    options: dict[str, JSONValue] = {}
    resolvers = section.get("resolvers", [])
    if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
        raise ValueError("[layers] resolvers must be a list of \"ip\" or \"ip:port\" strings")
    for text in resolvers:
        dns_probe.parse_resolver(text)  # raises ValueError with the reason
    options["resolvers"] = list(resolvers)
    system = section.get("system_resolvers", True)
    if not isinstance(system, bool):
        raise ValueError("[layers] system_resolvers must be true or false")
    options["system_resolvers"] = system
    ca_file = section.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not ca_file:
            raise ValueError("[layers] ca_file must be a path")
        options["ca_file"] = ca_file
    return options
