"""How `warroom check` writes a check: layer lines, httpstat-style phase bars, a summary and the verdict line.

Shared by the local check (console/commands/check.py) and the check run from
SSH hosts (console/remote/check.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from console.diagnosis.verdict import Verdict
from console.engine.units import ms_unit
from probes.layers import chosen_address
from probes.samples import Sample

BAR_WIDTH = 40



def _ms(value: object) -> str:
    return ms_unit(value)


def _bar_glyph() -> str:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower()
    return "█" if "utf" in encoding else "#"


#: The phase names of the bars, and which http probe "phase" each stands for.
_BAR_OF_PHASE = {"dns": "dns", "connect": "connect", "tls": "tls", "request": "server", "ttfb": "server",
                 "transfer": "transfer"}


def phases(samples: Sequence[Sample]) -> list[tuple[str, float | None]]:
    """(phase, ms) in order for one check, from the layers that ran (HTTP's own timings preferred).

    A phase that did not finish has ms None, except the one an HTTP failure
    ran out in: it gets the time spent in it (elapsed minus the phases before).
    """
    by_kind = {s.kind: s for s in samples}
    http = by_kind.get("http")
    tcp = by_kind.get("tcp")
    tls = by_kind.get("tls")
    dns_samples = [s for s in samples if s.kind == "dns"]
    out: list[tuple[str, float | None]] = []

    def num(sample: Sample | None, key: str) -> float | None:
        value = sample.fields.get(key) if sample else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def first_of(*values: float | None) -> float | None:
        return next((v for v in values if v is not None), None)

    if dns_samples:
        out.append(("dns", chosen_address(dns_samples)[1]))
    if tcp or http:
        out.append(("connect", first_of(num(http, "connect_ms"), num(tcp, "rtt_ms"))))
    if tls or num(http, "tls_ms") is not None or (http and str(http.target).startswith("https")):
        out.append(("tls", first_of(num(http, "tls_ms"), num(tls, "handshake_ms"))))
    if http:
        out.append(("server", num(http, "ttfb_ms")))
        out.append(("transfer", num(http, "transfer_ms")))
        elapsed = num(http, "elapsed_ms")
        ran_out = _BAR_OF_PHASE.get(str(http.fields.get("phase")))
        if not http.ok and elapsed is not None and ran_out:
            spent = sum(ms for name, ms in out if ms is not None and name != "dns")
            out = [(name, max(0.0, elapsed - spent) if name == ran_out and ms is None else ms) for name, ms in out]
            # Phases after the one that ran out never started: drop them rather than show blanks.
            names = [name for name, _ in out]
            out = out[: names.index(ran_out) + 1] if ran_out in names else out
    return out


def render_bars(samples: Sequence[Sample]) -> list[str]:
    """A waterfall: each phase's bar starts where the previous one ended, scaled to the total."""
    rows = phases(samples)
    total = sum(ms for _, ms in rows if ms is not None)
    http = next((s for s in samples if s.kind == "http"), None)
    ran_out = _BAR_OF_PHASE.get(str(http.fields.get("phase"))) if http is not None and not http.ok else None
    glyph = _bar_glyph()
    lines: list[str] = []
    offset = 0.0
    for name, ms in rows:
        if ms is None:
            lines.append(f"  {name:<9}{'-':>10}  {'':<{BAR_WIDTH}}  (did not finish)")
            continue
        start = round(offset / total * BAR_WIDTH) if total else 0
        length = max(1, round(ms / total * BAR_WIDTH)) if total else 1
        start = min(start, BAR_WIDTH - 1)
        length = min(length, BAR_WIDTH - start)
        note = f"  (ran out: {http.error})" if http is not None and name == ran_out else ""
        lines.append(f"  {name:<9}{_ms(ms):>10}  {' ' * start}{glyph * length}{' ' * (BAR_WIDTH - start - length)}"
                     f"{note}".rstrip())
        offset += ms
    if rows:
        lines.append(f"  {'total':<9}{_ms(total):>10}")
    return lines


def layer_line(sample: Sample) -> str:
    f = sample.fields
    state = "ok" if sample.ok else "FAIL"
    if sample.kind == "dns":
        if f.get("source") == "literal":
            return f"  DNS   ok    literal address {f.get('name')}"
        addresses = ",".join(str(a) for a in f.get("addresses") or []) or "-"  # type: ignore[union-attr]
        extra = ""
        if f.get("cname_chain"):
            extra += " via CNAME " + " -> ".join(str(c) for c in f["cname_chain"])  # type: ignore[union-attr]
        if f.get("disagrees_with"):
            extra += " DISAGREES with " + ", ".join(str(r) for r in f["disagrees_with"])  # type: ignore[union-attr]
            state = "WARN" if sample.ok else state
        ttl = f" ttl {f['ttl']}" if f.get("ttl") is not None else ""
        head = f"  DNS   {state:<5} {f.get('resolver')} ({f.get('source')}) {f.get('rcode') or sample.error or ''} "
        return f"{head}{addresses}{ttl} {_ms(f.get('time_ms'))}{extra}"
    if sample.kind == "tcp":
        detail = _ms(f.get("rtt_ms")) if sample.ok else f"{sample.error}: {sample.message}"
        return f"  TCP   {state:<5} {f.get('endpoint')} {detail}"
    if sample.kind == "tls":
        chain = f.get("chain") or []
        shown = " <- ".join(str(c.get("subject")) for c in chain if isinstance(c, dict))  # type: ignore[union-attr]
        expiry = f.get("days_until_expiry")
        expires = f", expires in {expiry:.1f} days" if isinstance(expiry, (int, float)) else ""
        proto = f"{f.get('protocol') or '-'} {f.get('cipher') or ''} alpn {f.get('alpn') or '-'}{expires}"
        verdict = "" if sample.ok else f"{f.get('verdict') or sample.error} "
        line = f"  TLS   {state:<5} {verdict}{proto}"
        if not sample.ok:
            line += f"\n              {sample.message}"
        return line + (f"\n              chain sent: {shown}" if shown else "")
    if sample.kind == "http":
        if not sample.ok:
            return f"  HTTP  FAIL  {sample.error} in phase {f.get('phase')}: {sample.message}"
        hops = "".join(f" {r.get('status')} -> {r.get('location')};" for r in f.get("redirects") or []  # type: ignore[union-attr]
                       if isinstance(r, dict))
        flag = " CHALLENGE REDIRECT" if f.get("challenge_redirect") else ""
        waf = f" WAF? {f['waf_hint']}" if f.get("waf_hint") else ""
        status = f.get("status")
        state = "ok" if isinstance(status, int) and status < 400 and not flag else "FAIL"
        return (f"  HTTP  {state:<5} {status} {f.get('reason') or ''} {f.get('http_version') or ''} "
                f"{f.get('bytes')} bytes{';' + hops if hops else ''}{flag}{waf}").rstrip()
    return f"  {sample.kind.upper():<5} {state:<5} {sample.message or ''}"


def render_summary(rounds: Sequence[Sequence[Sample]]) -> list[str]:
    """min / mean / max of each phase over several checks (only the checks where it finished)."""
    seen: dict[str, list[float]] = {}
    for samples in rounds:
        for name, ms in phases(samples):
            if ms is not None:
                seen.setdefault(name, []).append(ms)
    lines = [f"  {'phase':<9}{'min':>10}{'mean':>10}{'max':>10}   over {len(rounds)} checks"]
    for name, values in seen.items():
        lines.append(f"  {name:<9}{_ms(min(values)):>10}{_ms(sum(values) / len(values)):>10}{_ms(max(values)):>10}"
                     f"{'' if len(values) == len(rounds) else f'   ({len(values)} finished)'}")
    return lines


def render_verdict(verdict: Verdict) -> str:
    if verdict.healthy:
        ran = ", ".join(name for name, s in verdict.layers.items() if s.state == "ok")
        return f"verdict: {verdict.target} healthy ({ran} ok)"
    not_run = [name for name, s in verdict.layers.items() if s.state == "not-run"]
    tail = f"; not run: {', '.join(not_run)}" if not_run else ""
    word = "FAILED" if verdict.status == "failed" else "DEGRADED"
    return (f"verdict: {verdict.target} {word} at {verdict.first_broken_layer} ({verdict.error}): "
            f"{verdict.message}{tail}")
