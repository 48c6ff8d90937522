"""Diagnosis rules for DNS, TLS and HTTP, per target over a window, with the original error text as evidence.

Each rule reads the target's evidence (console/diagnosis/evidence.py): the
dns, icmp, tcp, tls and http Samples of the window, every failure put on the
layer that explains it. One cause gives one finding: a name that does not
resolve fails all four probes, and the DNS rule carries their failures as
evidence while the TCP, path and HTTP rules see nothing of theirs to judge.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from console.diagnosis.evidence import (
    DNS_ERRORS,
    HTTP_CONNECT_ERRORS,
    MIN_EVENTS,
    SLOW_LOOKUP_MS,
    WINDOW_S,
    Lookup,
    TargetEvidence,
    collect,
    duration,
    median,
    number,
    recovered,
    share,
)
from console.diagnosis.registry import Finding, rule
from console.diagnosis.transport import Transport
from console.engine.store import Store
from probes.samples import Sample

EXPIRY_WARN_DAYS = 14.0

# ----------------------------------------------------------------------------------------- DNS

_NOUN = {"tcp": "connects", "icmp": "echoes", "http": "requests", "tls": "handshakes"}
_DNS_TITLES = {
    "nxdomain": "{name} does not exist (NXDOMAIN)",
    "servfail": "DNS lookups of {name} fail (SERVFAIL)",
    "refused": "the resolver refuses to answer for {name} (REFUSED)",
    "no-answer": "{name} has no address record (NOERROR, no answer)",
    "timeout": "DNS lookups of {name} time out: no resolver answers",
    "failed": "{name} does not resolve",
}
_DNS_CAUSES = {
    "nxdomain": "the name does not exist for these resolvers: a typo, a missing record, or the wrong search domain",
    "servfail": "the resolver cannot reach or validate the authoritative servers (DNSSEC, lame delegation)",
    "refused": "the resolver does not serve this client or zone (ACL, wrong resolver configured)",
    "no-answer": "the name exists but has no A/AAAA record (only other types, or a CNAME to nothing)",
    "timeout": "the resolver is down, overloaded, or UDP/TCP 53 is blocked on the way",
    "failed": "read the resolver's own words below",
}
_DNS_NEXT = {
    "nxdomain": "check the spelling, the zone and /etc/resolv.conf's search domains; dig NAME @RESOLVER",
    "servfail": "query the authoritative servers directly (dig +trace), check DNSSEC and the forwarders",
    "refused": "check which resolver this host uses and that it allows this client (allow-query / ACL)",
    "no-answer": "check the zone's records for this name (dig NAME A / AAAA / CNAME)",
    "timeout": "check that the resolver runs and that UDP and TCP 53 are open between here and it",
    "failed": "read the resolver's answer below",
}


def _resolver_views(dns: list[Sample]) -> list[str]:
    """The latest answer of each resolver, with how often it gave that answer in the window."""
    latest: dict[str, Sample] = {}
    answers: Counter[tuple[str, str]] = Counter()
    for sample in dns:
        resolver = str(sample.fields.get("resolver") or "?")
        latest[resolver] = sample
        answers[(resolver, _answer(sample))] += 1
    total: Counter[str] = Counter()
    for (resolver, _), count in answers.items():
        total[resolver] += count
    views = []
    for resolver, sample in latest.items():
        said = _answer(sample)
        source = sample.fields.get("source")
        line = (f"dns: {resolver}" + (f" ({source})" if source else "") + f": {said} in "
                f"{duration(number(sample.fields.get('time_ms')))}")
        if sample.message and sample.message not in said:
            line += f" ({sample.message})"
        count = answers[(resolver, said)]
        if total[resolver] > 1:
            line += f"; this answer {count} of {total[resolver]} times"
        views.append(line)
    return views


def _answer(sample: Sample) -> str:
    addresses = sample.fields.get("addresses") or []
    listed = ", ".join(str(a) for a in addresses) if isinstance(addresses, list) else ""
    rcode = sample.fields.get("rcode")
    if sample.error == "timeout":
        return "no reply"
    if rcode and rcode != "NOERROR":
        return str(rcode)
    if sample.error:
        return sample.error
    return listed or "no address"


def _probe_failures(ev: TargetEvidence) -> list[str]:
    """The other probes' "no address" failures, as one line each, with their original message."""
    lines = []
    for kind in ("tcp", "icmp", "http", "tls"):
        samples = ev.samples(kind)
        failed = [s for s in samples if s.error == "dns"]
        if failed:
            took = number(failed[-1].fields.get("resolve_ms"))
            lines.append(f"{kind}: {share(len(failed), len(samples))} {_NOUN[kind]} got no address"
                         + (f" (lookup gave up after {duration(took)})" if took is not None else "")
                         + f": {failed[-1].message or failed[-1].error}")
    return lines


def _dns_common(ev: TargetEvidence) -> dict[str, object]:
    return {"target": ev.target, "host": ev.host, "layer": "dns", "window_s": ev.window_s,
            "series": tuple(ev.series), "ruled_out": ev.ruled_out("dns")}


@rule
def dns_target(store: Store) -> Iterable[Finding]:
    """One DNS finding per named target: resolvers that disagree, lookups that fail, or slow lookups."""
    for ev in collect(store).values():
        if not ev.is_name:
            continue
        finding = _dns_finding(ev)
        if finding is not None:
            yield finding


def _dns_finding(ev: TargetEvidence) -> Finding | None:
    dns = [s for s in ev.samples("dns") if not s.fields.get("literal")]
    lookups = ev.lookups()
    if not lookups:
        return None
    failures = _probe_failures(ev)
    views = _resolver_views(dns)
    disagreeing = [s for s in dns if s.fields.get("disagrees_with")]
    if disagreeing:
        rounds = {round(s.ts) for s in dns}
        bad_rounds = {round(s.ts) for s in disagreeing}
        latest: dict[str, Sample] = {str(s.fields.get("resolver")): s for s in dns}
        says = "; ".join(f"{r} says {_answer(s)}" for r, s in latest.items())
        return Finding(
            rule="dns_resolvers_disagree", severity="critical" if failures else "warning",
            confidence=0.75,
            title=f"{ev.target}: DNS resolvers disagree about {ev.name} ({says})",
            evidence=(*views, f"dns: resolvers disagreed in {len(bad_rounds)} of {len(rounds)} rounds", *failures),
            chain=(f"clients get different answers for {ev.name}", "the resolvers this host asks disagree",
                   "split-horizon views, a stale cache or pinned entry, or a resolver that lies"),
            next_step="find which answer is right (the authoritative server: dig +trace); flush or fix the stale "
                      "resolver, check split-horizon views; CDN names may legitimately differ",
            **_dns_common(ev))  # type: ignore[arg-type]
    if recovered(lookups, lambda lk: lk.error is not None or (lk.ms or 0.0) >= SLOW_LOOKUP_MS,
                 lambda lk: lk.error is None and (lk.ms or 0.0) < SLOW_LOOKUP_MS):
        return None  # lookups fail no more (or were never slow): fixed, or nothing to say
    failed = [lk for lk in lookups if lk.error]
    answered = [lk for lk in lookups if lk.error is None]
    slow = [lk for lk in answered if lk.ms is not None and lk.ms >= SLOW_LOOKUP_MS]
    timeouts = [lk for lk in failed if lk.error == "timeout"]
    hard = [lk for lk in failed if lk.error != "timeout"]
    if hard and (any(lk.kind == "dns" for lk in hard) or len(hard) >= MIN_EVENTS):
        kind = _dominant(hard)
        every = not answered
        return Finding(
            rule="dns_lookup_failing", severity="critical" if every else "warning",
            confidence=0.95 if every else 0.6,
            title=f"{ev.target}: " + _DNS_TITLES[kind].format(name=ev.name)
                  + ("" if every else f" in {share(len(hard), len(lookups))} lookups"),
            evidence=(*views, *failures),
            chain=("connects and requests fail before they start: no address" if failures else
                   f"lookups of {ev.name} fail", _lookup_said(kind, hard), _DNS_CAUSES[kind]),
            next_step=_DNS_NEXT[kind], **_dns_common(ev))  # type: ignore[arg-type]
    if slow and len(slow) + len(timeouts) >= MIN_EVENTS:
        resolvers = sorted({lk.resolver for lk in slow if lk.resolver})
        typical = median(lk.ms for lk in slow if lk.ms is not None)
        gave_up = f"; {share(len(timeouts), len(lookups))} lookups gave up" if timeouts else ""
        return Finding(
            rule="dns_slow", severity="critical" if timeouts else "warning", confidence=0.8,
            title=f"{ev.target}: slow DNS: {ev.name} takes {duration(typical)} to resolve"
                  + (f" at {', '.join(resolvers)}" if resolvers else "") + gave_up,
            evidence=(*views, f"{share(len(slow), len(lookups))} lookups took over {duration(SLOW_LOOKUP_MS)}: "
                      + ", ".join(f"{lk.kind} {duration(lk.ms)}" for lk in slow[-4:]), *failures),
            chain=("connects wait for an address" + (" and give up" if timeouts else ""),
                   f"the resolver answers in {duration(typical)}",
                   "an overloaded or distant resolver, or a forwarder waiting on its upstream"),
            next_step="time the resolver (dig NAME @RESOLVER); check its load and forwarders; a local cache "
                      "(nscd, systemd-resolved) hides this for repeated names only",
            **_dns_common(ev))  # type: ignore[arg-type]
    if timeouts and len(timeouts) >= MIN_EVENTS:
        every = not answered
        return Finding(
            rule="dns_lookup_failing", severity="critical" if every else "warning",
            confidence=0.85 if every else 0.6,
            title=f"{ev.target}: " + _DNS_TITLES["timeout"].format(name=ev.name)
                  + ("" if every else f" in {share(len(timeouts), len(lookups))} lookups"),
            evidence=(*views, *failures),
            chain=("no address for the connects", "lookups get no reply within their limit", _DNS_CAUSES["timeout"]),
            next_step=_DNS_NEXT["timeout"], **_dns_common(ev))  # type: ignore[arg-type]
    return None


def _dominant(failed: list[Lookup]) -> str:
    counts = Counter(lk.error for lk in failed)
    for kind in DNS_ERRORS:
        if counts.get(kind):
            return kind
    return "failed"


def _lookup_said(kind: str, failed: list[Lookup]) -> str:
    resolvers = sorted({lk.resolver for lk in failed if lk.resolver and lk.error == kind})
    rcode = {"nxdomain": "NXDOMAIN", "servfail": "SERVFAIL", "refused": "REFUSED",
             "no-answer": "no address (NOERROR)", "timeout": "nothing"}.get(kind, kind)
    return f"{', '.join(resolvers) if resolvers else 'the resolver'} answers {rcode}"


# ----------------------------------------------------------------------------------------- TLS

#: A defect kind in the words a title uses.
DEFECT_WORDS = {
    "expired": "expired",
    "not-yet-valid": "not yet valid",
    "hostname-mismatch": "wrong name (hostname mismatch)",
    "untrusted-root": "untrusted root CA",
    "missing-intermediate": "missing intermediate certificate",
    "self-signed": "self-signed",
    "weak-key": "weak key",
    "weak-signature": "weak signature",
    "cert-invalid": "rejected by verification",
}
#: Older probe verdicts, in the defect kinds of the contract.
_OLD_KINDS = {"untrusted-ca": "untrusted-root"}

_TLS_ADVICE = {
    "missing-intermediate": "install the full chain on the server (leaf then intermediate, e.g. fullchain.pem); "
                            "browsers may hide this by fetching the intermediate, API clients do not",
    "expired": "renew and deploy the certificate, then reload the server",
    "not-yet-valid": "check the clocks (this host's and the server's) or deploy the certificate later",
    "hostname-mismatch": "check which name clients use and the certificate's subjectAltName; a load balancer "
                         "may serve a default certificate for unknown SNI",
    "self-signed": "deploy a CA-signed certificate, or give clients this CA explicitly (ca_file)",
    "untrusted-root": "add the private CA to the client's trust store, or fix the chain the server sends",
    "weak-key": "reissue the certificate with a 2048-bit RSA or a P-256 key",
    "weak-signature": "reissue the certificate signed with SHA-256 or better",
    "cert-invalid": "read the verification message below",
}


def defects_of(sample: Sample) -> list[tuple[str, str]]:
    """(kind, plain words) for every defect a tls Sample reports; older Samples give their verdict and problems."""
    raw = sample.fields.get("defects")
    if isinstance(raw, list) and raw:
        out = []
        for item in raw:
            if isinstance(item, dict) and item.get("kind"):
                kind = str(item["kind"])
                out.append((_OLD_KINDS.get(kind, kind), str(item.get("detail") or DEFECT_WORDS.get(kind, kind))))
        if out:
            return out
    problems = sample.fields.get("problems")
    kinds = [str(p) for p in problems] if isinstance(problems, list) and problems else [str(sample.error)]
    out = []
    for kind in dict.fromkeys(_OLD_KINDS.get(k, k) for k in kinds):
        out.append((kind, _old_detail(kind, sample)))
    return out


def _old_detail(kind: str, sample: Sample) -> str:
    chain = sample.fields.get("chain")
    leaf = chain[0] if isinstance(chain, list) and chain and isinstance(chain[0], dict) else {}
    if kind in ("expired", "not-yet-valid"):
        stamp = leaf.get("not_after" if kind == "expired" else "not_before")
        try:
            when = dt.datetime.fromisoformat(str(stamp))
        except ValueError:
            return DEFECT_WORDS[kind]
        days = abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) / 86400
        at = when.strftime("%Y-%m-%d %H:%M UTC")
        span = f"{days:.1f} day" + ("" if f"{days:.1f}" == "1.0" else "s")
        return f"expired {span} ago ({at})" if kind == "expired" else f"valid only in {span} ({at})"
    if kind == "hostname-mismatch":
        san = leaf.get("san")
        names = ", ".join(str(n) for n in san) if isinstance(san, list) else ""
        return f"the certificate names {names or leaf.get('subject')}, not {sample.fields.get('sni')}"
    if kind == "missing-intermediate":
        return "the server sent its certificate without the intermediate CA that links it to a trusted root"
    if kind == "untrusted-root":
        return f"the chain ends at {leaf.get('issuer') or 'a CA'}, which this client does not trust"
    if kind == "self-signed":
        return "the server presents a certificate that signs itself"
    return DEFECT_WORDS.get(kind, kind)


def _tls_common(ev: TargetEvidence) -> dict[str, object]:
    return {"target": ev.target, "host": ev.host, "layer": "tls", "window_s": ev.window_s,
            "series": tuple(ev.series), "ruled_out": ev.ruled_out("tls", "http")}


@rule
def tls_target(store: Store) -> Iterable[Finding]:
    """Certificates rejected (every defect named) and handshakes that fail, per target over the window."""
    for ev in collect(store).values():
        finding = _tls_finding(ev)
        if finding is not None:
            yield finding


def _tls_finding(ev: TargetEvidence) -> Finding | None:
    tls = [s for s in ev.attempts("tls") if s.fields.get("phase") != "connect"]
    http_tls = [s for s in ev.attempts("http") if s.error == "tls"]
    rejected = [s for s in tls if s.fields.get("verdict") not in (None, "ok") or s.fields.get("defects")]
    if tls and recovered(tls, lambda s: not s.ok, lambda s: s.ok, least=2):
        return None  # handshakes work again (TLS runs at a fifth of the rate: two in a row are enough)
    http_line = ([f"http: {share(len(http_tls), len(ev.attempts('http')))} requests failed the handshake: "
                  f"{http_tls[-1].message}"] if http_tls else [])
    if rejected:
        last = rejected[-1]
        defects = defects_of(last)
        kinds = [k for k, _ in defects]
        words = ", ".join(DEFECT_WORDS.get(k, k) for k in kinds)
        handshakes = share(len(rejected), len(tls))
        evidence = [f"tls: {DEFECT_WORDS.get(kind, kind)}: {detail}" for kind, detail in defects]
        evidence.append(f"tls: {handshakes} handshakes rejected; verification said: {last.message}")
        chain = last.fields.get("chain") or []
        sent = " <- ".join(str(c.get("subject")) for c in chain if isinstance(c, dict))  # type: ignore[union-attr]
        if sent:
            evidence.append(f"tls: chain as sent: {sent}")
        return Finding(
            rule="tls_certificate_rejected", severity="critical" if len(rejected) * 2 >= len(tls) else "warning",
            confidence=0.95, title=f"{ev.target}: TLS certificate rejected: {words}",
            evidence=(*evidence, *http_line),
            chain=("HTTPS requests fail in the handshake" if http_tls else "TLS handshakes are rejected",
                   f"the certificate is {words}", _tls_cause(kinds)),
            next_step="; ".join(dict.fromkeys(_TLS_ADVICE.get(k, _TLS_ADVICE["cert-invalid"]) for k in kinds)),
            **_tls_common(ev))  # type: ignore[arg-type]
    broken = [s for s in tls if not s.ok]
    if len(broken) >= 1 and (len(broken) * 2 >= len(tls) or len(broken) >= MIN_EVENTS):
        last = broken[-1]
        stalls = last.error == "timeout"
        return Finding(
            rule="tls_handshake_failing", severity="critical", confidence=0.8,
            title=(f"{ev.target}: TCP connects but the TLS handshake never completes ({share(len(broken), len(tls))})"
                   if stalls else f"{ev.target}: TLS handshake fails ({share(len(broken), len(tls))}): "
                                  f"{last.message or last.error}"),
            evidence=(f"tls: {share(len(broken), len(tls))} handshakes failed: {last.message or last.error}",
                      *http_line),
            chain=("HTTPS fails", "the TCP connect works, the TLS handshake does not",
                   "the port does not speak TLS, or client and server share no protocol version or cipher"
                   if not stalls else "the server accepts but never answers the ClientHello (hung, or not TLS)"),
            next_step="compare the server's TLS versions and ciphers with the client's (openssl s_client -connect); "
                      "check that the port serves TLS", **_tls_common(ev))  # type: ignore[arg-type]
    if http_tls and len(http_tls) >= MIN_EVENTS and not tls:
        message = http_tls[-1].message or "tls"
        return Finding(
            rule="tls_certificate_rejected", severity="critical", confidence=0.7,
            title=f"{ev.target}: TLS handshake rejected: {message}",
            evidence=tuple(http_line), chain=("HTTPS requests fail in the handshake", message),
            next_step="run warroom check on the URL to see the chain the server sends",
            **_tls_common(ev))  # type: ignore[arg-type]
    return None


def _tls_cause(kinds: list[str]) -> str:
    if "missing-intermediate" in kinds:
        return "the server is configured with its leaf certificate only, not the full chain"
    if "expired" in kinds or "not-yet-valid" in kinds:
        return "the certificate was not renewed (or the clock is wrong)"
    if "hostname-mismatch" in kinds:
        return "the server presents a certificate for another name (a default certificate, the wrong SNI)"
    if "untrusted-root" in kinds or "self-signed" in kinds:
        return "the certificate comes from a CA this client does not trust"
    return "the certificate fails verification"


@rule
def tls_expiring_soon(store: Store) -> Iterable[Finding]:
    for ev in collect(store).values():
        tls = [s for s in ev.attempts("tls") if s.ok]
        if not tls:
            continue
        days = number(tls[-1].fields.get("days_until_expiry"))
        if days is not None and days < EXPIRY_WARN_DAYS:
            yield Finding(rule="tls_expiring_soon", layer="tls", severity="warning", confidence=0.9,
                          title=f"{ev.target}: certificate expires in {days:.1f} days",
                          evidence=(f"tls: not_after {tls[-1].fields.get('not_after')}",),
                          chain=("the certificate is valid today", f"it expires in {days:.1f} days"),
                          ruled_out=ev.ruled_out("tls"), target=ev.target, host=ev.host, window_s=ev.window_s,
                          series=tuple(ev.series),
                          next_step="renew it now; check that automatic renewal (certbot, cert-manager) runs")


# ----------------------------------------------------------------------------------------- HTTP

_STATUS_WORDS = {
    500: ("the application fails on this request", "read the application's error log at these times"),
    502: ("the proxy could not get a valid answer from its backend",
          "the backend refused, reset or crashed: check that it runs and listens where the proxy points, "
          "and its error log"),
    503: ("the server or its proxy sheds load or has no healthy backend",
          "check the backend pool's health checks and the server's capacity"),
    504: ("the proxy's upstream timeout fired before the backend answered",
          "the backend behind the proxy is slow or down: check its latency and pool saturation; the proxy's "
          "upstream timeout is shorter than this client's"),
}


def limits_text(limits: object) -> str:
    """An HTTP probe's timeouts in words: "connect 1 s, read 1.6 s, total 2 s"."""
    if not isinstance(limits, dict):
        return ""
    return ", ".join(f"{name} {value:g} s" for name, value in limits.items() if isinstance(value, (int, float)))


def _own_http(ev: TargetEvidence) -> list[Sample]:
    """HTTP Samples that speak for HTTP: not the ones DNS, TCP or TLS already explain."""
    return [s for s in ev.attempts("http") if s.error != "tls" and s.error not in HTTP_CONNECT_ERRORS
            and not (s.error == "reset" and s.fields.get("phase") == "connect")]


def _http_common(ev: TargetEvidence) -> dict[str, object]:
    return {"target": ev.target, "host": ev.host, "layer": "http", "window_s": ev.window_s,
            "series": tuple(ev.series), "ruled_out": ev.ruled_out("http")}


def _ms_of(samples: list[Sample], name: str) -> float | None:
    return median(v for s in samples if (v := number(s.fields.get(name))) is not None)


@rule
def http_challenge_redirect(store: Store) -> Iterable[Finding]:
    """Requests redirected to a bot challenge or login page, counted over the window (a share is enough)."""
    for ev in collect(store).values():
        own = [s for s in _own_http(ev) if s.ok]
        challenged = [s for s in own if s.fields.get("challenge_redirect")]
        if not challenged or recovered(own, lambda s: bool(s.fields.get("challenge_redirect")),
                                       lambda s: not s.fields.get("challenge_redirect")):
            continue
        location = challenged[-1].fields.get("challenge_location")
        others = [s for s in own if not s.fields.get("challenge_redirect")]
        statuses = Counter(str(s.fields.get("status")) for s in others)
        yield Finding(
            rule="http_challenge_redirect", severity="critical" if len(challenged) * 2 >= len(own) else "warning",
            confidence=0.85,
            title=f"{ev.target}: {share(len(challenged), len(own))} requests redirected to a challenge or login "
                  "page, not the API",
            evidence=(f"http: {share(len(challenged), len(own))} requests redirected to {location}",
                      *([f"http: the others answered {', '.join(f'{k} x{v}' for k, v in statuses.items())}"]
                        if others else []),
                      f"http: first redirect status {_first_redirect(challenged[-1])}"),
            chain=("some requests never reach the API", "they are redirected to a challenge or login page",
                   "a CDN/WAF bot check (or an auth proxy) scores this client as a bot some of the time"),
            next_step="a CDN/WAF bot check or an auth proxy intercepts this client: allow-list the caller, or send "
                      "the credentials the proxy expects; its logs name the rule that fired",
            **_http_common(ev))  # type: ignore[arg-type]


def _first_redirect(sample: Sample) -> str:
    redirects = sample.fields.get("redirects")
    if isinstance(redirects, list) and redirects and isinstance(redirects[0], dict):
        return str(redirects[0].get("status"))
    return "-"


@rule
def http_status(store: Store) -> Iterable[Finding]:
    """Error statuses (5xx, WAF blocks, other 4xx) over the window; one finding per target, the commonest status."""
    for ev in collect(store).values():
        own = [s for s in _own_http(ev) if s.ok]
        bad = [s for s in own if (number(s.fields.get("status")) or 0) >= 400]
        if not bad or recovered(own, lambda s: (number(s.fields.get("status")) or 0) >= 400,
                                lambda s: (number(s.fields.get("status")) or 0) < 400):
            continue
        counts = Counter(int(number(s.fields.get("status")) or 0) for s in bad)
        status, count = counts.most_common(1)[0]
        if count < MIN_EVENTS:
            continue  # one answer is not yet a pattern
        these = [s for s in bad if number(s.fields.get("status")) == status]
        yield _status_finding(ev, status, these, own)


def _status_finding(ev: TargetEvidence, status: int, these: list[Sample], own: list[Sample]) -> Finding:
    last = these[-1]
    reason = str(last.fields.get("reason") or "")
    ttfb = _ms_of(these, "ttfb_ms")
    mostly = len(these) * 2 >= len(own)
    rate = share(len(these), len(own))
    server = last.fields.get("server")
    evidence = [f"http: {rate} requests answered {status} {reason}".rstrip()
                + (f" after {duration(ttfb)} to first byte (median)" if ttfb is not None else ""),
                *([f"http: server: {server}"] if server else [])]
    if status in (403, 406, 429):
        hint = last.fields.get("waf_hint")
        if hint:
            evidence.append(f"http: WAF mark: {hint}")
        return Finding(
            rule="http_waf_block", severity="critical" if hint and mostly else "warning",
            confidence=0.8 if hint else 0.4,
            title=f"{ev.target}: HTTP {status} {'from a WAF' if hint else '(a WAF or the application refuses)'} "
                  f"in {rate} requests",
            evidence=tuple(evidence),
            chain=(f"HTTP {status}", "the request is refused before the application answers" if hint else
                   "the request is refused", "a WAF rule, a rate limit or the caller's IP reputation"),
            next_step="look up the request in the WAF's logs (the block page's incident/ray id) and the rule that "
                      "fired; check the caller's IP reputation and rate limits", **_http_common(ev))  # type: ignore[arg-type]
    if status == 499:
        return Finding(
            rule="http_client_gave_up", severity="critical" if mostly else "warning", confidence=0.7,
            title=f"{ev.target}: the client gave up first (status 499 in {rate} requests)",
            evidence=tuple(evidence), chain=("HTTP 499", "the client closed the connection before the answer"),
            next_step="the server is slower than the client's timeout: compare the server's latency with the "
                      "client timeout", **_http_common(ev))  # type: ignore[arg-type]
    cause, next_step = _STATUS_WORDS.get(status, (
        "the server refuses this request" if status < 500 else "the server fails this request",
        "read the server's log for these requests; check the URL, method and credentials"))
    if status == 504:
        waited = f"the proxy waited {duration(ttfb)} for its backend" if ttfb is not None else \
            "the proxy waited for its backend"
        chain: tuple[str, ...] = ("HTTP 504 Gateway Timeout", waited,
                                  "its backend answers slower than the proxy's upstream timeout, or not at all")
        title = (f"{ev.target}: HTTP 504 Gateway Timeout in {rate} requests: the proxy gave up on its backend"
                 + (f" after {duration(ttfb)}" if ttfb is not None else ""))
    else:
        chain = (f"HTTP {status} {reason}".rstrip(), cause)
        title = f"{ev.target}: HTTP {status} {reason} in {rate} requests: {cause}".replace("  ", " ")
    return Finding(
        rule="http_status", severity=("critical" if mostly else "warning") if status >= 500 else "warning",
        confidence=0.8 if status >= 500 else 0.5, title=title, evidence=tuple(evidence), chain=chain,
        next_step=next_step, **_http_common(ev))  # type: ignore[arg-type]


@rule
def http_no_response(store: Store) -> Iterable[Finding]:
    """Requests that connect and then get no response (or a response that stops), or a connection dropped."""
    for ev in collect(store).values():
        own = _own_http(ev)
        if not own or recovered(own, lambda s: not s.ok, lambda s: s.ok):
            continue
        stalled = [s for s in own if s.error in ("read-timeout", "total-timeout", "write-timeout")
                   and s.fields.get("phase") in ("ttfb", "request", None)]
        dripping = [s for s in own if s.error in ("read-timeout", "total-timeout")
                    and s.fields.get("phase") == "transfer"]
        transport = Transport.of(ev)
        # A reset while the path also loses packets is the path's (path_quality); alone, it is the server's.
        path_fault = transport.lost > 0 or bool(transport.tcp_errors("reset"))
        dropped = [s for s in own if s.error == "protocol" or (s.error == "reset" and not path_fault)]
        tcp_ok = [s for s in ev.attempts("tcp") if s.ok]
        tcp_rtt = median(v for s in tcp_ok if (v := number(s.fields.get("rtt_ms"))) is not None)
        connected = f"TCP connects in {duration(tcp_rtt)}" if tcp_rtt is not None else "the connect works"
        for group, kind in ((stalled, "stall"), (dripping, "drip"), (dropped, "drop")):
            if len(group) < MIN_EVENTS:
                continue
            last = group[-1]
            limits = last.fields.get("timeouts")
            limit = limits.get("read") if isinstance(limits, dict) else None
            rate = share(len(group), len(own))
            mostly = len(group) * 2 >= len(own)
            evidence = (f"http: {rate} requests: {last.message or last.error}",
                        *([f"http: limits: {limits_text(limits)}"] if limits_text(limits) else []))
            if kind == "stall":
                title = (f"{ev.target}: accepts connections but sends no response: {rate} requests got no response "
                         + (f"within {limit:g} s" if isinstance(limit, (int, float)) else "in time"))
                chain: tuple[str, ...] = ("requests time out waiting for the response", f"{connected} and the "
                                          "request is sent", "the server accepts but never answers: a hung or "
                                          "saturated worker, a deadlock, or a backend it waits on")
                next_step = ("look at the server's worker pool and what its requests wait on (thread dump, slow "
                             "queries, a backend call without a timeout)")
            elif kind == "drip":
                title = f"{ev.target}: the response starts, then stalls: {rate} requests"
                chain = ("requests time out in the body", "headers arrive, the body stops",
                         "the server (or a proxy buffering it) stalls mid-response")
                next_step = "check the server's streaming/buffering and the proxy's timeouts"
            else:
                title = f"{ev.target}: the server closes the connection without a response: {rate} requests"
                chain = ("requests fail with no answer", f"{connected}, then the server hangs up",
                         "the server crashes on the request, or speaks another protocol on this port")
                next_step = "read the server's error log; check that the port serves HTTP"
            yield Finding(rule="http_no_response" if kind != "drop" else "http_connection_dropped",
                          severity="critical" if mostly else "warning", confidence=0.8, title=title,
                          evidence=evidence, chain=chain, next_step=next_step,
                          **_http_common(ev))  # type: ignore[arg-type]
            break


__all__ = ["EXPIRY_WARN_DAYS", "WINDOW_S", "defects_of", "limits_text"]
