"""Samples as the probes make them, for rule tests: the fields of the contract and, where they differ, older ones.

Each helper returns one Sample stamped ``ts``; ``Timeline`` fills a Store
second by second and runs the FindingsEngine after each second, the way the
console does, so a test can check every moment and not only the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from console.diagnosis.engine import FindingsEngine
from console.diagnosis.finding import Finding
from console.engine.store import Store
from probes.samples import JSONValue, Sample

T0 = 1_800_000_000.0
NXDOMAIN_GAI = "[Errno -2] Name or service not known"


def tcp_ok(target: str, ts: float, rtt_ms: float = 0.2, connect_ms: float | None = None) -> Sample:
    return Sample("tcp", target, ts, {"rtt_ms": rtt_ms, "connect_ms": connect_ms or rtt_ms, "rtt_source": "kernel",
                                      "endpoint": target.split("/")[-1]})


def tcp_fail(target: str, ts: float, error: str, message: str, **fields: JSONValue) -> Sample:
    return Sample("tcp", target, ts, {"endpoint": target, **fields}, error=error, message=message)


def icmp_ok(target: str, ts: float, rtt_ms: float = 0.1, address: str = "10.0.0.5") -> Sample:
    return Sample("icmp", target, ts, {"rtt_ms": rtt_ms, "address": address, "mode": "raw"})


def icmp_lost(target: str, ts: float, address: str = "10.0.0.5") -> Sample:
    return Sample("icmp", target, ts, {"address": address, "mode": "raw"}, error="timeout",
                  message=f"no echo reply from {address} within 950 ms")


def http_ok(target: str, ts: float, status: int = 200, ttfb_ms: float = 3.0, connect_ms: float = 0.3,
            **fields: JSONValue) -> Sample:
    return Sample("http", target, ts, {"status": status, "reason": "OK" if status == 200 else "", "dns_ms": 0.0,
                                       "connect_ms": connect_ms, "ttfb_ms": ttfb_ms, "total_ms": ttfb_ms + 1,
                                       "address": "10.0.0.5", "challenge_redirect": False, "redirects": [],
                                       "timeouts": {"connect": 1.0, "read": 1.6, "total": 2.0}, **fields})


def http_fail(target: str, ts: float, error: str, message: str, phase: str, **fields: JSONValue) -> Sample:
    return Sample("http", target, ts, {"phase": phase, "timeouts": {"connect": 1.0, "read": 1.6, "write": 1.0,
                                                                    "pool": 0.5, "total": 2.0}, **fields},
                  error=error, message=message)


def dns_answer(target: str, ts: float, resolver: str, addresses: list[str], time_ms: float = 1.2,
               disagrees_with: list[str] | None = None) -> Sample:
    return Sample("dns", target, ts, {"name": target.split("://")[-1].split(":")[0].split("/")[0],
                                      "resolver": resolver, "source": "system", "rcode": "NOERROR",
                                      "addresses": list[JSONValue](addresses), "time_ms": time_ms,
                                      "disagrees_with": list[JSONValue](disagrees_with or [])})


def dns_rcode(target: str, ts: float, resolver: str, rcode: str, time_ms: float = 1.0) -> Sample:
    name = target.split("://")[-1].split(":")[0].split("/")[0]
    return Sample("dns", target, ts, {"name": name, "resolver": resolver, "source": "system", "rcode": rcode,
                                      "addresses": [], "time_ms": time_ms, "disagrees_with": []},
                  error=rcode.lower(), message=f"{rcode} for {name} from {resolver}")


@dataclass
class Timeline:
    """A store whose clock the test moves, and the engine that runs after each second."""

    now: float = T0
    store: Store = field(init=False)
    engine: FindingsEngine = field(init=False)
    published: list[Sample] = field(default_factory=list)
    seen: list[list[Finding]] = field(default_factory=list)
    """The engine's ranked findings after each second."""

    def __post_init__(self) -> None:
        self.store = Store(clock=lambda: self.now)
        self.engine = FindingsEngine(self.store, publish=self.published.append)

    def add(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            self.store.add(sample)

    def run(self, seconds: int, each_second: Callable[[float], Iterable[Sample]]) -> list[list[Finding]]:
        """For each second: the samples of that second, then the engine, as the console does at 1 Hz."""
        for _ in range(seconds):
            self.now += 1.0
            self.add(each_second(self.now))
            self.seen.append(list(self.engine.run_once(self.now)))
        return self.seen
