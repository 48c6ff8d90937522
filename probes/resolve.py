"""The name lookup the TCP, ICMP and HTTP probes do first, timed and bounded on its own.

A probe that hands a name to connect() measures the resolver and the server
together, and under one timeout: a 2 s lookup then shows as "every connect
timed out". So those probes look the name up here first, with their own
timeout, and connect to the address they got; ``resolve_ms`` is the lookup's
time and a failed lookup is an error of its own kind ("dns") that says what
the resolver answered.

The lookup follows the system's configuration as the C library would (hosts
file first, then the nameservers, search list and options of
/etc/resolv.conf, trying the next nameserver when one fails) but through
dnspython, for two reasons: it is cancellable (a getaddrinfo() in an executor
thread cannot be stopped, so slow lookups pile up threads and delay every
other probe), and it tells the rcode and the nameserver, which getaddrinfo()
folds into "Temporary failure in name resolution". nsswitch sources other
than files and dns (mdns, systemd's myhostname) are not consulted. Where
dnspython is missing (an SSH agent on a bare host) the lookup falls back to
getaddrinfo(), still bounded, with the failure kinds it can tell. An IP
literal needs no lookup and imports nothing.

Failure kinds (``LookupFailed.kind``, the Sample's ``fields["dns_error"]``):
"nxdomain", "servfail", "refused", "no-answer" (the name exists but has no
A/AAAA record), "timeout" (no answer within the lookup's timeout) and
"no-resolver" (resolv.conf names no nameserver). The message is dnspython's
own text, with the nameservers asked.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from probes.runtime import within
from probes.samples import JSONValue, Sample, error_sample

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.resolver

HOSTS_FILE = "/etc/hosts"
RESOLV_CONF = "/etc/resolv.conf"
#: Seconds a lookup may take before it is a "timeout". Apart from the connect's
#: timeout, so a slow resolver is seen as slow DNS, and longer than it, so a
#: resolver answering in 2 s is measured rather than cut off.
DEFAULT_TIMEOUT = 3.0
#: resolv.conf's "options timeout:" when the file does not say (resolv.conf(5)).
GLIBC_TRY_TIMEOUT = 5.0
#: The Sample error kind of a failed lookup, whichever probe made it.
ERROR_DNS = "dns"


def file_version(path: str) -> tuple[int, int]:
    """(mtime_ns, size) of ``path``, the key its parse is kept under; OSError when it is missing or
    unreadable, or not a regular file (a FIFO would block the read, a device would never end, in a
    probe that runs every second)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError("not a regular file")
    return info.st_mtime_ns, info.st_size


@functools.lru_cache(maxsize=8)
def _hosts_table(path: str, version: tuple[int, int]) -> dict[str, list[str]]:
    """Name (lower case, no final dot) -> its addresses in file order, for one version of a hosts file."""
    table: dict[str, list[str]] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                words = line.split("#", 1)[0].split()
                for name in words[1:]:
                    found = table.setdefault(name.rstrip(".").lower(), [])
                    if words[0] not in found:
                        found.append(words[0])
    except OSError:
        return {}
    return table


def hosts_lookup(name: str, path: str = HOSTS_FILE) -> list[str]:
    """Addresses /etc/hosts gives ``name`` (hand-written: dnspython does not read hosts files). One stat a
    call, so the probes call it at each tick without a thread: the file is read again when it changes."""
    try:
        version = file_version(path)
    except OSError:
        return []
    return list(_hosts_table(path, version).get(name.rstrip(".").lower(), ()))


class LookupFailed(Exception):
    """The name did not resolve; ``kind`` says how, the message is the resolver's own text."""

    def __init__(self, kind: str, message: str, resolve_ms: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.resolve_ms = resolve_ms


@dataclass(frozen=True)
class Resolved:
    """Where a name points: the address to connect to, its family and how long the lookup took."""

    address: str
    family: int
    resolve_ms: float | None
    """None for an IP literal: no lookup was made."""
    source: str
    """"literal", "hosts" or "dns"."""

    def fields(self) -> dict[str, JSONValue]:
        """The Sample fields every probe adds: the address, and resolve_ms for a name."""
        out: dict[str, JSONValue] = {"address": self.address}
        if self.resolve_ms is not None:
            out["resolve_ms"] = self.resolve_ms
        return out


def failed_sample(kind: str, target: str, exc: LookupFailed, *, host: str,
                  fields: dict[str, JSONValue] | None = None) -> Sample:
    """The Sample of a probe whose lookup failed: error "dns", dns_error, resolve_ms, the original text."""
    return error_sample(kind, target, ERROR_DNS, str(exc), host=host,
                        fields={**(fields or {}), "dns_error": exc.kind, "resolve_ms": exc.resolve_ms})


@functools.lru_cache(maxsize=8)
def _system_resolver(path: str, version: tuple[int, int]) -> dns.asyncresolver.Resolver:
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(filename=path, configure=True)
    resolver.use_search_by_default = True  # as the C library does: the search list and ndots apply
    with open(path, encoding="utf-8", errors="replace") as handle:
        if "timeout:" not in handle.read():
            # The C library waits 5 s for one nameserver before asking again (dnspython: 2 s), so an
            # answer that takes 2 s reaches an application: it must reach the probe too.
            resolver.timeout = GLIBC_TRY_TIMEOUT
    return resolver


def system_resolver(path: str = RESOLV_CONF) -> dns.asyncresolver.Resolver:
    """A resolver configured from resolv.conf; rebuilt when the file changes. One stat a call (and a
    read of the file when it changed), so the probes call it at each tick without a thread."""
    import dns.resolver

    try:
        version = file_version(path)
    except OSError as exc:
        raise dns.resolver.NoResolverConfiguration(f"cannot read {path}: {exc}") from None
    return _system_resolver(path, version)


def _nameservers(resolver: dns.resolver.BaseResolver) -> str:
    return ", ".join(str(ns) for ns in resolver.nameservers) or "none"


def _rcode_kind(exc: dns.resolver.NoNameservers) -> str:
    """servfail or refused: what the nameservers answered (the first one's answer when they differ)."""
    import dns.exception
    import dns.rcode

    for error in exc.kwargs.get("errors") or []:
        response = error[4] if len(error) > 4 else None
        if response is not None:
            rcode = response.rcode()
            if rcode == dns.rcode.REFUSED:
                return "refused"
            if rcode == dns.rcode.SERVFAIL:
                return "servfail"
    for error in exc.kwargs.get("errors") or []:
        if len(error) > 3 and isinstance(error[3], dns.exception.Timeout):
            return "timeout"
    return "servfail"


async def _query(resolver: dns.asyncresolver.Resolver, name: str, qtype: str,
                 lifetime: float) -> list[str]:
    answer = await resolver.resolve(name, qtype, lifetime=lifetime, raise_on_no_answer=False)
    return [rdata.address for rdata in answer] if answer.rrset is not None else []


async def _dns_lookup(name: str, timeout: float, resolv_conf: str) -> tuple[str, int]:
    try:
        import dns.exception
        import dns.resolver
    except ImportError:  # a bare host (the SSH agent without dnspython): the C library's answer
        return await _libc_lookup(name, timeout)
    try:
        resolver = system_resolver(resolv_conf)
    except dns.resolver.NoResolverConfiguration as exc:
        raise _Failure("no-resolver", f"no nameserver to ask: {exc or resolv_conf + ' lists none'}") from None
    asked = _nameservers(resolver)
    try:
        # dnspython's lifetime bounds each question; this bounds the pair of them.
        results = await within(asyncio.gather(_query(resolver, name, "A", timeout),
                                                        _query(resolver, name, "AAAA", timeout),
                                                        return_exceptions=True), timeout + 0.1)
    except (TimeoutError, asyncio.TimeoutError):
        raise _Failure("timeout", f"no answer for {name} from {asked} within {timeout:g} s") from None
    for addresses, family in zip(results, (socket.AF_INET, socket.AF_INET6), strict=True):
        if isinstance(addresses, list) and addresses:
            return addresses[0], family  # IPv4 first, then IPv6: the lab and most backends are v4
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is None:
        raise _Failure("no-answer", f"{name}: the name exists but has no A or AAAA record (asked {asked})")
    if isinstance(failure, dns.resolver.NXDOMAIN):
        raise _Failure("nxdomain", f"{failure} (asked {asked})")
    if isinstance(failure, dns.resolver.NoNameservers):
        raise _Failure(_rcode_kind(failure), str(failure))
    if isinstance(failure, dns.exception.Timeout):
        raise _Failure("timeout", str(failure))
    if isinstance(failure, (dns.exception.DNSException, OSError)):
        raise _Failure("servfail", f"{type(failure).__name__}: {failure} (asked {asked})")
    raise failure


#: getaddrinfo's errors, as near as the C library lets us tell (EAI_AGAIN folds SERVFAIL, REFUSED and
#: timeouts together: "servfail", with its own words kept).
_EAI_KINDS = {getattr(socket, "EAI_NONAME", -2): "nxdomain", getattr(socket, "EAI_NODATA", -5): "no-answer",
              getattr(socket, "EAI_AGAIN", -3): "servfail"}


async def _libc_lookup(name: str, timeout: float) -> tuple[str, int]:
    """getaddrinfo() in a thread, bounded (the thread itself cannot be stopped: only where dnspython is missing)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await within(loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        raise _Failure("timeout", f"no address for {name} within {timeout:g} s (getaddrinfo)") from None
    except socket.gaierror as exc:
        raise _Failure(_EAI_KINDS.get(exc.errno, "servfail"), f"{name}: {exc}") from None
    family, _type, _proto, _canon, sockaddr = sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0]
    return str(sockaddr[0]), int(family)


class _Failure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def lookup(host: str, timeout: float = DEFAULT_TIMEOUT, *, hosts_file: str = HOSTS_FILE,
                 resolv_conf: str = RESOLV_CONF) -> Resolved:
    """The address to connect to for ``host``; raises LookupFailed within about ``timeout`` seconds."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return Resolved(str(literal), socket.AF_INET6 if literal.version == 6 else socket.AF_INET, None, "literal")
    started = time.perf_counter()

    def took() -> float:
        return round((time.perf_counter() - started) * 1000.0, 3)

    if hosts_file:
        pinned = hosts_lookup(host, hosts_file)
        if pinned:
            address = pinned[0]
            return Resolved(address, socket.AF_INET6 if ":" in address else socket.AF_INET, took(), "hosts")
    try:
        # The inner limits name the resolver; this one also covers reading resolv.conf.
        address, family = await within(_dns_lookup(host, timeout, resolv_conf), timeout + 0.5)
    except _Failure as failure:
        raise LookupFailed(failure.kind, str(failure), took()) from None
    except (TimeoutError, asyncio.TimeoutError):
        raise LookupFailed("timeout", f"no answer for {host} within {timeout:g} s", took()) from None
    return Resolved(address, family, took(), "dns")


@dataclass(frozen=True)
class Lookup:
    """How a probe looks names up: its timeout and the files it follows (options of tcp, icmp and http)."""

    timeout: float = DEFAULT_TIMEOUT
    resolv_conf: str = RESOLV_CONF
    hosts_file: str = HOSTS_FILE
    """"" to skip the hosts file."""

    @classmethod
    def from_options(cls, options: dict[str, JSONValue]) -> Lookup:
        """``resolve_timeout`` (seconds), ``resolv_conf`` and ``hosts_file`` from a ProbeSpec's options."""
        value = options.get("resolve_timeout")
        timeout = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 \
            else DEFAULT_TIMEOUT
        hosts_file = options.get("hosts_file", HOSTS_FILE)
        return cls(timeout, str(options.get("resolv_conf") or RESOLV_CONF),
                   hosts_file if isinstance(hosts_file, str) else HOSTS_FILE)

    async def __call__(self, host: str) -> Resolved:
        return await lookup(host, self.timeout, hosts_file=self.hosts_file, resolv_conf=self.resolv_conf)


DEFAULT_LOOKUP = Lookup()
