"""What the probes say about each target over a window: the shared reading every target rule starts from.

A target is what the user typed (secrets masked), seen from one host; its
evidence is the dns, icmp, tcp, tls and http Samples of the last ``window_s``
seconds. Each failure is put on the layer that explains it (a connect that
had no address is DNS's, an HTTP request that failed its handshake is TLS's),
so one cause is judged once, by the rule of its own layer, and the others can
say what they rule out.

The reading is cached per store version: the engine runs every rule once a
second and each asks for the same evidence.
"""

from __future__ import annotations

import re
import statistics
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from console.engine.store import SeriesKey, Store
from probes.redact import redact_url
from probes.samples import Sample
from probes.targets import Target, TargetError, is_ip_literal, parse_target

T = TypeVar("T")

#: The window rules read by default, in seconds (shown in every finding).
WINDOW_S = 60.0
#: Probe kinds that speak about a target.
TARGET_KINDS = ("dns", "icmp", "tcp", "tls", "http")
#: Fewest attempts of a kind before a rate is judged: the first seconds are never a verdict.
MIN_ATTEMPTS = 3
#: Fewest bad events before a sporadic fault (loss, resets, a redirected request) is a warning.
MIN_EVENTS = 2
#: A lookup at least this slow is reported as slow DNS.
SLOW_LOOKUP_MS = 500.0
#: A fault stops being a finding once this many attempts in a row went well...
RECOVER_AFTER = 5
#: ...and at least this many times the fault's usual gap (attempts per bad one), so a fault that comes back
#: every third request stays listed, and one fixed for good clears within seconds.
RECOVER_GAPS = 4.0
#: A connect that took this long landed on a SYN retransmission (Linux resends after 1 s, then 3 s).
RTO_WINDOWS_MS = ((900.0, 1600.0), (2900.0, 3800.0))

#: Failure kinds that are not about the target at all (the probe could not run here).
NOT_EVIDENCE = {"not-permitted", "missing-extra", "no-resolver"}
#: HTTP errors that happened while connecting: TCP's or the path's, not HTTP's.
HTTP_CONNECT_ERRORS = {"connect-timeout", "refused", "unreachable"}
#: The DNS failure kinds the probes report in ``fields["dns_error"]``.
DNS_ERRORS = ("nxdomain", "servfail", "refused", "no-answer", "timeout")

_GAI_KINDS = (  # getaddrinfo's own words (older probes put only these in the message)
    (re.compile(r"within|timed? ?out", re.I), "timeout"),
    (re.compile(r"Errno -2\]|not known|NXDOMAIN", re.I), "nxdomain"),
    (re.compile(r"Errno -5\]|No address associated", re.I), "no-answer"),
    (re.compile(r"Errno -3\]|Temporary failure|SERVFAIL", re.I), "servfail"),
    (re.compile(r"REFUSED", re.I), "refused"),
)


def duration(ms: float | None) -> str:
    """A duration in the unit a person reads: "0.2 ms", "12 ms", "1.0 s"."""
    if ms is None:
        return "-"
    if ms >= 1000.0:
        return f"{ms / 1000.0:.1f} s"
    if ms >= 10.0:
        return f"{ms:.0f} ms"
    if ms >= 0.1:
        return f"{ms:.1f} ms"
    return f"{ms:.3f} ms"


def share(count: int, total: int) -> str:
    """ "9 of 30 (30%)"."""
    return f"{count} of {total} ({100.0 * count / total:.0f}%)" if total else f"{count} of 0"


def number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def on_rto(ms: float | None) -> bool:
    """True for a connect time that landed on a SYN retransmission (~1 s or ~3 s)."""
    return ms is not None and any(low <= ms <= high for low, high in RTO_WINDOWS_MS)


def recovered(samples: Sequence[T], bad: Callable[[T], bool], good: Callable[[T], bool],
              least: int = RECOVER_AFTER) -> bool:
    """True when the latest attempts went well for long enough that the fault has stopped (oldest first in)."""
    count = sum(1 for s in samples if bad(s))
    if not count:
        return True
    trailing = 0
    for sample in reversed(samples):
        if not good(sample):
            break
        trailing += 1
    return trailing >= max(least, RECOVER_GAPS * len(samples) / count)


@dataclass(frozen=True)
class Lookup:
    """One name lookup, by the dns probe (per resolver) or by another probe before its connect."""

    kind: str
    """The probe that made it ("dns", "tcp", "icmp", "http", "tls")."""
    ms: float | None
    """How long it took (None when not measured)."""
    error: str | None
    """None, or one of DNS_ERRORS (or another failure kind the probe gave)."""
    message: str | None
    """The resolver's or the C library's own words."""
    resolver: str | None = None
    rcode: str | None = None
    ts: float = 0.0


def dns_error_of(sample: Sample) -> str:
    """Which DNS failure a probe's "dns" error was: its ``dns_error`` field, or read from the old message."""
    kind = sample.fields.get("dns_error")
    if isinstance(kind, str) and kind:
        return kind
    for pattern, name in _GAI_KINDS:
        if pattern.search(sample.message or ""):
            return name
    return "failed"


@dataclass
class TargetEvidence:
    """One target seen from one host, over the window: its Samples by kind and what they add up to."""

    host: str
    target: str
    """As typed, secrets masked."""
    window_s: float
    by_kind: dict[str, list[Sample]] = field(default_factory=dict)
    series: list[SeriesKey] = field(default_factory=list)

    @property
    def parsed(self) -> Target | None:
        try:
            return parse_target(self.target)
        except TargetError:
            return None

    @property
    def name(self) -> str:
        parsed = self.parsed
        return parsed.host if parsed else self.target

    @property
    def is_name(self) -> bool:
        """True when the target needs a lookup (not an IP literal)."""
        parsed = self.parsed
        return parsed is not None and not is_ip_literal(parsed.host)

    @property
    def port(self) -> int | None:
        parsed = self.parsed
        return parsed.tcp_port if parsed else None

    def samples(self, kind: str) -> list[Sample]:
        """The window's Samples of ``kind``, minus those that say only that a probe cannot run here."""
        return [s for s in self.by_kind.get(kind, []) if s.error not in NOT_EVIDENCE]

    def attempts(self, kind: str) -> list[Sample]:
        """Samples of ``kind`` that got past name resolution (so they speak for their own layer)."""
        return [s for s in self.samples(kind) if s.error != "dns"]

    # -- DNS -------------------------------------------------------------------------------------
    def lookups(self) -> list[Lookup]:
        """Every lookup in the window: the dns probe's per resolver, and those the other probes made."""
        out: list[Lookup] = []
        for sample in self.samples("dns"):
            if sample.fields.get("literal"):
                continue
            out.append(Lookup("dns", number(sample.fields.get("time_ms")), sample.error, sample.message,
                              str(sample.fields.get("resolver") or "") or None,
                              str(sample.fields.get("rcode") or "") or None, sample.ts))
        for kind in ("tcp", "icmp", "http", "tls"):
            for sample in self.samples(kind):
                resolve_ms = number(sample.fields.get("resolve_ms"))
                if resolve_ms is None and kind == "http" and self.is_name and sample.error != "dns":
                    own = number(sample.fields.get("dns_ms"))  # the HTTP probe's own lookup (0: none made)
                    resolve_ms = own if own else None
                if sample.error == "dns":
                    out.append(Lookup(kind, resolve_ms, dns_error_of(sample), sample.message,
                                      str(sample.fields.get("resolver") or "") or None, None, sample.ts))
                elif resolve_ms is not None and self.is_name:
                    out.append(Lookup(kind, resolve_ms, None, None, None, None, sample.ts))
        return sorted(out, key=lambda lk: lk.ts)

    # -- addresses -------------------------------------------------------------------------------
    def addresses(self) -> set[str]:
        """Addresses this target was reached at (or resolved to), for matching sockets and captures."""
        found: set[str] = set()
        parsed = self.parsed
        if parsed is not None and is_ip_literal(parsed.host):
            found.add(parsed.host)
        for kind in TARGET_KINDS:
            for sample in self.by_kind.get(kind, [])[-20:]:
                address = sample.fields.get("address")
                if isinstance(address, str) and address:
                    found.add(address.strip("[]"))
                for answer in sample.fields.get("addresses") or [] if kind == "dns" else []:  # type: ignore[union-attr]
                    found.add(str(answer))
        return found

    def endpoints(self) -> set[str]:
        """"ip:port" (v6 bracketed) for each address, as sockets and captures write them, and the name:port
        as typed (a pool's DSN names the server as the user does)."""
        port = self.port
        if port is None:
            return set()
        names = self.addresses() | {self.name}
        return {f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in names}

    # -- health per layer, for the ruled-out line ------------------------------------------------
    def ruled_out(self, *skip: str) -> tuple[str, ...]:
        """The layers the window clears, in plain words ("DNS ok 1.2 ms", "TCP ok 0.2 ms", "TLS ok")."""
        out: list[str] = []
        lookups = self.lookups()
        if "dns" not in skip and self.is_name and lookups and all(lk.error is None for lk in lookups):
            times = [lk.ms for lk in lookups if lk.ms is not None]
            slow = [t for t in times if t >= SLOW_LOOKUP_MS]
            if not slow:
                out.append(f"DNS ok {duration(median(times))}" if times else "DNS ok")
        icmp = self.attempts("icmp")
        if "path" not in skip and len(icmp) >= MIN_ATTEMPTS and all(s.ok for s in icmp):
            out.append(f"ICMP ok {duration(median(number(s.fields.get('rtt_ms')) or 0.0 for s in icmp))}, "
                       f"0 of {len(icmp)} lost")
        tcp = self.attempts("tcp")
        if "tcp" not in skip and tcp and all(s.ok for s in tcp):
            rtts = [v for s in tcp if (v := number(s.fields.get("rtt_ms"))) is not None]
            out.append(f"TCP ok {duration(median(rtts))}" if rtts else "TCP ok")
        tls = self.attempts("tls")
        if "tls" not in skip and tls and all(s.ok for s in tls):
            protocol = tls[-1].fields.get("protocol")
            out.append(f"TLS ok ({protocol})" if protocol else "TLS ok")
        http = self.attempts("http")
        if "http" not in skip and http and all(s.ok and (number(s.fields.get("status")) or 0) < 400
                                               and not s.fields.get("challenge_redirect") for s in http):
            statuses = sorted({int(number(s.fields.get("status")) or 0) for s in http})
            out.append(f"HTTP ok {', '.join(str(s) for s in statuses)}")
        return tuple(out)


def label_of(target: str) -> str:
    """The name a target goes by in findings: as typed, with any secret masked."""
    return redact_url(target)


_CACHE: weakref.WeakKeyDictionary[Store, tuple[tuple[int, float, int], dict[tuple[str, str], TargetEvidence]]] = \
    weakref.WeakKeyDictionary()


def collect(store: Store, window_s: float = WINDOW_S) -> dict[tuple[str, str], TargetEvidence]:
    """Evidence per (host, target) over the last ``window_s`` seconds, every target kind merged."""
    now = store.clock()
    stamp = (store.version, window_s, int(now))
    cached = _CACHE.get(store)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    out: dict[tuple[str, str], TargetEvidence] = {}
    for kind in TARGET_KINDS:
        for key in store.keys(kind=kind):
            host, _, target = key
            if not target:
                continue
            samples = store.window(key, window_s, now)
            if not samples:
                continue
            label = label_of(target)
            evidence = out.setdefault((host, label), TargetEvidence(host, label, window_s))
            evidence.by_kind.setdefault(kind, []).extend(samples)
            evidence.series.append(key)
    for evidence in out.values():
        for samples in evidence.by_kind.values():
            samples.sort(key=lambda s: s.ts)
    _CACHE[store] = (stamp, out)
    return out


def target_for_endpoint(store: Store, endpoint: str, host: str | None = None,
                        window_s: float = WINDOW_S) -> str | None:
    """The typed target whose address and port are ``endpoint`` ("ip:port"), if any."""
    return next((ev.target for (h, _t), ev in sorted(collect(store, window_s).items())
                 if (host is None or h == host) and endpoint in ev.endpoints()), None)
