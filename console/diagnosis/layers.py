"""Diagnosis rules for the layered probes: DNS, TLS and HTTP faults named in plain words.

Each rule reads the latest Samples of the dns/tls/http series in the store
(the ones the layered check or the individual probes produce) and yields
Findings with the original error text as evidence. Imported by the lead's
console to register them.
"""

from __future__ import annotations

from collections.abc import Iterable

from console.diagnosis.registry import Finding, rule
from console.engine.store import SeriesKey, Store
from probes.samples import Sample

#: Look back this far for the "latest" evidence; older samples describe a past state.
WINDOW_S = 120.0
EXPIRY_WARN_DAYS = 14.0

_TLS_ADVICE = {
    "missing-intermediate": ("the server sends its certificate without the intermediate CA",
                             "install the full chain on the server (leaf then intermediate, e.g. fullchain.pem); "
                             "browsers may hide this by fetching the intermediate, API clients do not"),
    "expired": ("the server's certificate has expired", "renew and deploy the certificate, then reload the server"),
    "not-yet-valid": ("the server's certificate is not valid yet",
                      "check the clocks (this host's and the server's) or deploy the certificate later"),
    "hostname-mismatch": ("the certificate does not name the host being called",
                          "check which name clients use and the certificate's subjectAltName; "
                          "a load balancer may serve a default certificate for unknown SNI"),
    "self-signed": ("the server presents a self-signed certificate",
                    "deploy a CA-signed certificate, or give clients this CA explicitly (ca_file)"),
    "untrusted-ca": ("the certificate chains to a CA this client does not trust",
                     "add the private CA to the client's trust store, or fix the chain the server sends"),
    "cert-invalid": ("the certificate was rejected", "read the verification message below"),
}


def _latest(store: Store, kind: str) -> Iterable[tuple[SeriesKey, Sample]]:
    for key in store.keys(kind=kind):
        last = store.last(key)
        if last is not None:
            yield key, last


def _latest_per_resolver(store: Store, key: SeriesKey) -> list[Sample]:
    latest: dict[str, Sample] = {}
    for sample in store.window(key, WINDOW_S):
        latest[str(sample.fields.get("resolver"))] = sample
    return list(latest.values())


@rule
def tls_certificate_rejected(store: Store) -> Iterable[Finding]:
    """The latest TLS handshake was refused because of the certificate, named by the reason."""
    for key, sample in _latest(store, "tls"):
        if sample.error not in _TLS_ADVICE:
            continue
        title, advice = _TLS_ADVICE[sample.error]
        chain = sample.fields.get("chain") or []
        sent = " <- ".join(str(c.get("subject")) for c in chain if isinstance(c, dict))  # type: ignore[union-attr]
        yield Finding(
            rule="tls_certificate_rejected", layer="tls", severity="critical", confidence=0.95,
            title=f"{key[2]}: TLS {sample.error}: {title}",
            evidence=tuple(e for e in (sample.message or "", f"chain as sent: {sent}" if sent else "") if e),
            series=(key,), next_step=advice)


@rule
def tls_expiring_soon(store: Store) -> Iterable[Finding]:
    for key, sample in _latest(store, "tls"):
        days = sample.fields.get("days_until_expiry")
        if sample.ok and isinstance(days, (int, float)) and days < EXPIRY_WARN_DAYS:
            yield Finding(rule="tls_expiring_soon", layer="tls", severity="warning", confidence=0.9,
                          title=f"{key[2]}: certificate expires in {days:.1f} days",
                          evidence=(f"not_after {sample.fields.get('not_after')}",), series=(key,),
                          next_step="renew it now; check that automatic renewal (certbot, cert-manager) runs")


@rule
def http_challenge_redirect(store: Store) -> Iterable[Finding]:
    """A 302/303/307 to a bot challenge or login page: the client is being treated as a browser/bot."""
    for key, sample in _latest(store, "http"):
        if sample.fields.get("challenge_redirect"):
            yield Finding(
                rule="http_challenge_redirect", layer="http", severity="critical", confidence=0.85,
                title=f"{key[2]}: redirected to a challenge or login page, not the API",
                evidence=(f"redirect to {sample.fields.get('challenge_location')}",
                          f"final status {sample.fields.get('status')}"),
                series=(key,),
                next_step="a CDN/WAF bot check or an auth proxy intercepts this client: allow-list the caller, "
                          "or send the credentials the proxy expects")


@rule
def http_waf_block(store: Store) -> Iterable[Finding]:
    """A 403 (or 406/429) that looks like a WAF's block rather than the application's."""
    for key, sample in _latest(store, "http"):
        status = sample.fields.get("status")
        if status not in (403, 406, 429):
            continue
        hint = sample.fields.get("waf_hint")
        yield Finding(
            rule="http_waf_block", layer="http", severity="critical" if hint else "warning",
            confidence=0.8 if hint else 0.4,
            title=f"{key[2]}: HTTP {status} {'from a WAF' if hint else '(a WAF or the application refuses)'}",
            evidence=tuple(e for e in (f"status {status} {sample.fields.get('reason') or ''}".strip(),
                                       f"WAF mark: {hint}" if hint else "",
                                       f"server: {sample.fields.get('server')}") if e),
            series=(key,),
            next_step="look up the request in the WAF's logs (the block page's incident/ray id) and the rule "
                      "that fired; check the caller's IP reputation and rate limits")


@rule
def http_gateway_timeout_or_client_gave_up(store: Store) -> Iterable[Finding]:
    """504 (the proxy gave up on the backend) versus a client-side timeout (the proxy logs 499)."""
    for key, sample in _latest(store, "http"):
        status = sample.fields.get("status")
        if status == 504:
            yield Finding(
                rule="http_gateway_timeout_or_client_gave_up", layer="http", severity="critical", confidence=0.8,
                title=f"{key[2]}: 504 Gateway Timeout: the proxy's upstream timeout fired before the backend answered",
                evidence=(f"status 504 after {sample.fields.get('ttfb_ms')} ms to first byte",
                          f"server: {sample.fields.get('server')}"),
                series=(key,),
                next_step="the backend behind the proxy is slow or down: check its latency and pool saturation; "
                          "the proxy's upstream timeout is shorter than this client's")
        elif status == 499 or sample.error in ("read-timeout", "total-timeout"):
            limits = sample.fields.get("timeouts") or {}
            yield Finding(
                rule="http_gateway_timeout_or_client_gave_up", layer="http", severity="critical", confidence=0.7,
                title=f"{key[2]}: the client gave up first ({sample.error or 'status 499'} "
                      f"during {sample.fields.get('phase') or 'the request'}); a proxy logs this as 499",
                evidence=tuple(e for e in (sample.message or f"status {status}", f"limits: {limits}") if e),
                series=(key,),
                next_step="the server is slower than the client's timeout: compare the server's latency with "
                          "the client timeout; a 499 in proxy logs confirms clients hang up")
        elif status == 502:
            yield Finding(
                rule="http_gateway_timeout_or_client_gave_up", layer="http", severity="critical", confidence=0.7,
                title=f"{key[2]}: 502 Bad Gateway: the proxy could not get a valid answer from the backend",
                evidence=(f"status 502, server: {sample.fields.get('server')}",), series=(key,),
                next_step="the backend refused, reset or crashed: check that it runs and listens where the "
                          "proxy points, and its error log")


@rule
def dns_resolvers_disagree(store: Store) -> Iterable[Finding]:
    """Resolvers asked the same question gave different answers (split horizon, stale cache, hijack)."""
    for key in store.keys(kind="dns"):
        latest = _latest_per_resolver(store, key)
        if not any(s.fields.get("disagrees_with") for s in latest):
            continue
        views = tuple(f"{s.fields.get('resolver')} ({s.fields.get('source')}): {s.fields.get('rcode')} "
                      f"{', '.join(str(a) for a in s.fields.get('addresses') or []) or '-'}"  # type: ignore[union-attr]
                      for s in latest if s.fields.get("rcode") is not None)
        yield Finding(
            rule="dns_resolvers_disagree", layer="dns", severity="warning", confidence=0.7,
            title=f"{key[2]}: DNS resolvers disagree, so clients reach different addresses",
            evidence=views, series=(key,),
            next_step="find which answer is right (the authoritative server); flush or fix the stale resolver, "
                      "check split-horizon views; CDN names may legitimately differ")


@rule
def dns_lookup_failing(store: Store) -> Iterable[Finding]:
    """Resolvers answer NXDOMAIN/SERVFAIL/REFUSED or time out for a target's name."""
    for key in store.keys(kind="dns"):
        latest = _latest_per_resolver(store, key)
        failed = [s for s in latest if not s.ok]
        if not failed:
            continue
        every = len(failed) == len(latest)
        kinds = sorted({s.error or "" for s in failed})
        yield Finding(
            rule="dns_lookup_failing", layer="dns", severity="critical" if every else "warning",
            confidence=0.9 if every else 0.6,
            title=f"{key[2]}: {'every' if every else 'some'} resolver failed ({', '.join(kinds)})",
            evidence=tuple(s.message or s.error or "" for s in failed), series=(key,),
            next_step={"nxdomain": "the name does not exist for these resolvers: check spelling, search domains "
                                   "and the zone",
                       "servfail": "the resolver could not reach or validate the authoritative servers "
                                   "(DNSSEC, lame delegation)",
                       "timeout": "the resolver does not answer: check it runs and that UDP/TCP 53 is open"}.get(
                kinds[0], "read the resolver's answer below"))


@rule
def target_unreachable(store: Store) -> Iterable[Finding]:
    """A TCP target whose recent connects all failed, named by how they failed."""
    for key in store.keys(kind="tcp"):
        stats = store.stats(key, seconds=30)
        if stats.count >= 3 and stats.ok == 0:
            host, _, target = key
            advice = {
                "refused": "nothing listens there or a firewall rejects: check the service and its port",
                "timeout": "SYNs get no answer: check firewalls, security groups and the listen backlog",
                "unreachable": "the network has no route: check routing and the interface",
            }.get(stats.last_error or "", "read the original error below")
            yield Finding(
                rule="target_unreachable",
                title=f"{target} unreachable from {host}: every connect {stats.last_error}",
                severity="critical",
                layer="tcp",
                confidence=0.9,
                evidence=(f"{stats.count} of {stats.count} connects failed in 30 s",
                          f"last error: {stats.last_message}"),
                series=(key,),
                next_step=advice,
            )
