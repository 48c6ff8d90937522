"""DNS probe: ask every resolver the same question and show where they differ.

Applications resolve through the system's resolvers (/etc/resolv.conf) in
turn; when one of them lies, times out or says NXDOMAIN, the application sees
it only some of the time. So this probe asks each resolver directly (system
ones and any the user names in ``options["resolvers"]``) and yields one Sample
per resolver per round:

fields: name, resolver ("ip:port"), source ("system" | "user" | "hosts"),
rcode ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED" ...), addresses (sorted
A and AAAA answers), ttl (the smallest TTL along the answer, CNAMEs included),
cname_chain (names followed, in order), time_ms, and disagrees_with: the
resolvers in the same round whose answer (rcode and address set) differs from
this one's. An empty list means they all agree; resolvers that failed to
answer at all (timeouts) are not compared.

error: "nxdomain", "servfail", "refused" (the rcode), "no-answer" (NOERROR
with no address), "timeout" (no reply within the timeout), or the TCP probe's
socket failure kinds.

A name listed in /etc/hosts is answered from there (source "hosts"), as the
C library would, and the system resolvers are not asked; resolvers the user
named still are, so a stale pinned address shows up as a disagreement. With
``system_resolvers: false`` the hosts file is not read either. A target that is an IP literal
needs no lookup and yields one Sample with ``literal: true``.

Options: resolvers (list of "ip", "ip:port" or "[v6]:port"),
system_resolvers (bool, default true: also ask those of /etc/resolv.conf),
qtypes (default ["A", "AAAA"]), hosts_file (default "/etc/hosts", "" to skip),
resolv_conf (default "/etc/resolv.conf").
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from probes.redact import redact_url
from probes.resolve import HOSTS_FILE, RESOLV_CONF, hosts_lookup, system_resolver
from probes.runtime import ProbeSpec, scheduled, within
from probes.samples import ERROR_TIMEOUT, LOCAL_HOST, JSONValue, Sample
from probes.targets import parse_target
from probes.tcp import failure_kind

KIND = "dns"
DEFAULT_QTYPES = ("A", "AAAA")


@dataclass(frozen=True)
class Resolver:
    """One resolver to ask: its address, port, and where we learnt of it."""

    ip: str
    port: int = 53
    source: str = "user"

    @property
    def label(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}"


def parse_resolver(text: str, source: str = "user") -> Resolver:
    """"ip", "ip:port", "[v6]:port" or a bare v6 address; raises ValueError with a reason."""
    raw = text.strip()
    port = 53
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep:
            raise ValueError(f"resolver {text!r}: missing ']'")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"resolver {text!r}: expected [v6]:PORT")
            port = int(rest[1:])
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"resolver {text!r}: port {port_text!r} is not a number")
        port = int(port_text)
    else:
        host = raw
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"resolver {text!r}: {host!r} is not an IP address") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"resolver {text!r}: port {port} is outside 1-65535")
    return Resolver(ip, port, source)


def system_resolvers(path: str = RESOLV_CONF) -> list[Resolver]:
    """The nameservers of /etc/resolv.conf (one stat a call, a read when the file changed: no thread)."""
    try:
        conf = system_resolver(path)
    except (dns.resolver.NoResolverConfiguration, OSError):
        return []
    out = []
    for server in conf.nameservers:
        try:
            out.append(Resolver(str(ipaddress.ip_address(str(server))), conf.port, "system"))
        except ValueError:
            continue  # a DoH/DoT nameserver URL: not something we query here
    return out


def resolvers_from_options(options: dict[str, JSONValue]) -> list[Resolver]:
    """The user's resolvers from ``options["resolvers"]``; raises ValueError on a bad one."""
    raw = options.get("resolvers") or []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ValueError("options['resolvers'] must be a list of 'ip' or 'ip:port'")
    return [parse_resolver(str(item)) for item in raw]


async def _ask(name: dns.name.Name, qtype: str, resolver: Resolver, timeout: float) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    # The outer wait_for is belt and braces: dnspython's own timeout covers the
    # UDP wait, but a TCP fallback after truncation must be bounded too.
    response, _tcp = await within(
        dns.asyncquery.udp_with_fallback(query, resolver.ip, timeout=timeout, port=resolver.port), timeout)
    return response


async def query_resolver(name: str, resolver: Resolver, timeout: float,
                         qtypes: Sequence[str] = DEFAULT_QTYPES) -> dict[str, JSONValue]:
    """Ask one resolver for ``name``; returns the Sample fields plus "_error"/"_message" on failure."""
    qname = dns.name.from_text(name)
    fields: dict[str, JSONValue] = {"name": qname.to_text(omit_final_dot=True), "resolver": resolver.label,
                                    "source": resolver.source}
    start = time.perf_counter()
    results = await asyncio.gather(*(_ask(qname, qt, resolver, timeout) for qt in qtypes), return_exceptions=True)
    fields["time_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
    addresses: list[str] = []
    cnames: list[str] = []
    ttls: list[int] = []
    rcode: int | None = None
    failure: BaseException | None = None
    for result in results:
        if isinstance(result, BaseException):
            failure = failure or result
            continue
        this_rcode = result.rcode()
        if rcode is None or rcode == dns.rcode.NOERROR:
            rcode = this_rcode  # an error rcode on any question outranks NOERROR on another
        if this_rcode != dns.rcode.NOERROR:
            continue
        assert isinstance(result, dns.message.QueryMessage)  # make_query's replies always are
        chain = result.resolve_chaining()
        for cname in chain.cnames:
            ttls.append(cname.ttl)
            target = cname[0].target.to_text(omit_final_dot=True)
            if target not in cnames:
                cnames.append(target)
        if chain.answer is not None:
            ttls.append(chain.answer.ttl)
            addresses.extend(rdata.address for rdata in chain.answer)
    if rcode == dns.rcode.NOERROR and not addresses and failure is not None:
        rcode = None  # one question timed out and the other had nothing: the timeout is the news
    if rcode is None:
        assert failure is not None
        if isinstance(failure, (dns.exception.Timeout, asyncio.TimeoutError, TimeoutError)):
            fields["_error"] = ERROR_TIMEOUT
            fields["_message"] = f"no reply from {resolver.label} within {timeout:g} s"
        else:
            fields["_error"] = failure_kind(failure)
            fields["_message"] = f"{resolver.label}: {failure or type(failure).__name__}"
        fields["rcode"] = None
        return fields
    rcode_text = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    by_family = sorted(set(addresses), key=_address_order)
    ordered: list[JSONValue] = list(by_family)
    chain_names: list[JSONValue] = list(cnames)
    fields.update(rcode=rcode_text, addresses=ordered, cname_chain=chain_names, ttl=min(ttls) if ttls else None)
    if rcode != dns.rcode.NOERROR:
        fields["_error"] = rcode_text.lower()
        fields["_message"] = f"{rcode_text} for {fields['name']} from {resolver.label}"
    elif not addresses:
        fields["_error"] = "no-answer"
        fields["_message"] = f"NOERROR but no {'/'.join(qtypes)} record for {fields['name']} from {resolver.label}"
    return fields


def _address_order(address: str) -> tuple[int, str]:
    return (1 if ":" in address else 0, address)


def _answer_key(fields: dict[str, JSONValue]) -> tuple[object, ...] | None:
    """What two resolvers must share to agree; None for a resolver that gave no answer."""
    if fields.get("source") == "hosts":
        return ("NOERROR", tuple(sorted(str(a) for a in fields.get("addresses") or [])))  # type: ignore[union-attr]
    if fields.get("rcode") is None:
        return None
    addresses = fields.get("addresses") or []
    assert isinstance(addresses, list)
    return (fields["rcode"], tuple(sorted(str(a) for a in addresses)))


def flag_disagreement(rows: list[dict[str, JSONValue]]) -> None:
    """Set ``disagrees_with`` on each row: the resolvers whose answer differs from its own."""
    keys = [_answer_key(row) for row in rows]
    for row, key in zip(rows, keys, strict=True):
        row["disagrees_with"] = [other["resolver"] for other, other_key in zip(rows, keys, strict=True)
                                 if key is not None and other_key is not None and other_key != key]


async def resolve(target_text: str, *, timeout: float, resolvers: Sequence[Resolver] = (),
                  system: bool = True, qtypes: Sequence[str] = DEFAULT_QTYPES, hosts_file: str = HOSTS_FILE,
                  resolv_conf: str = RESOLV_CONF, host: str = LOCAL_HOST) -> list[Sample]:
    """One round: one Sample per resolver (or one for a literal address or a hosts-file entry)."""
    target = parse_target(target_text)
    label = redact_url(target_text)  # the series name: never with a password in it
    now = time.time()
    try:
        literal = str(ipaddress.ip_address(target.host))
    except ValueError:
        literal = None
    if literal is not None:
        return [Sample(KIND, label, now, host=host,
                       fields={"name": literal, "literal": True, "addresses": [literal], "time_ms": 0.0,
                               "resolver": None, "source": "literal", "rcode": None, "disagrees_with": []})]
    rows: list[dict[str, JSONValue]] = []
    asked: list[Resolver] = []
    if system and hosts_file:
        started = time.perf_counter()
        from_hosts: list[JSONValue] = list(hosts_lookup(target.host, hosts_file))
        if from_hosts:
            # The C library answers from the hosts file and never asks DNS ("files dns"),
            # so the system resolvers are not asked; resolvers the user named still are,
            # and a stale pinned address then shows up as a disagreement.
            rows.append({"name": target.host, "addresses": from_hosts, "resolver": hosts_file, "source": "hosts",
                         "rcode": None, "ttl": None, "cname_chain": [],
                         "time_ms": round((time.perf_counter() - started) * 1000.0, 3)})
    if system and not rows:
        asked.extend(system_resolvers(resolv_conf))
    for resolver in resolvers:
        if resolver not in asked:
            asked.append(resolver)
    if not asked and not rows:
        return [Sample(KIND, label, time.time(), host=host, error="no-resolver",
                       message="no resolver to ask: /etc/resolv.conf lists none and none was given",
                       fields={"name": target.host})]
    rows += await asyncio.gather(*(query_resolver(target.host, r, timeout, qtypes) for r in asked))
    flag_disagreement(rows)
    out = []
    for row in rows:
        error = row.pop("_error", None)
        message = row.pop("_message", None)
        out.append(Sample(KIND, label, time.time(), fields=row, host=host,
                          error=str(error) if error else None, message=str(message) if message else None))
    return out


def stream(spec: ProbeSpec, host: str = LOCAL_HOST) -> AsyncIterator[Sample]:
    parse_target(spec.target)  # fail fast on a bad target, before the first tick
    resolvers = resolvers_from_options(spec.options)
    system = spec.options.get("system_resolvers", True) is not False
    qtypes = spec.options.get("qtypes") or list(DEFAULT_QTYPES)
    hosts_file = spec.options.get("hosts_file", HOSTS_FILE)
    resolv_conf = str(spec.options.get("resolv_conf") or RESOLV_CONF)
    assert isinstance(qtypes, list)
    return scheduled(
        lambda: resolve(spec.target, timeout=spec.timeout * 0.9, resolvers=resolvers, system=system,
                        qtypes=[str(q) for q in qtypes], hosts_file=str(hosts_file or ""), resolv_conf=resolv_conf,
                        host=host),
        kind=KIND, target=redact_url(spec.target), interval=spec.interval, timeout=spec.timeout, host=host)
