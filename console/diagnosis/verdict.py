"""The verdict of a layered check: the first broken layer, from the Samples alone.

Works on Samples (never on live probes), so a check's JSON output, a
recording or a remote agent's stream all give the same verdict.

Each layer gets a state:
- "ok"       every attempt worked
- "warn"     it works, but not cleanly: some resolver failed or resolvers
             disagree, some attempts failed, a certificate expires within
             ``EXPIRY_WARN_DAYS``
- "fail"     no attempt worked (DNS gave no address, every connect failed, the
             certificate is rejected, HTTP timed out, answered >= 400,
             redirected to a challenge/login page, or kept redirecting)
- "skipped"  not needed (DNS for an IP literal)
- "not-run"  it applies but was not reached because a lower layer failed

status: "healthy" (no fail, no warn), "degraded" (a warn, no fail), "failed".
``first_broken_layer`` is the lowest "fail" layer or, when degraded, the
lowest "warn" layer; ``error`` and ``message`` come from its Sample unedited.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from probes.layers import LAYERS, layers_for
from probes.redact import redact_url
from probes.samples import JSONValue, Sample
from probes.targets import parse_target

EXPIRY_WARN_DAYS = 14.0


@dataclass(frozen=True)
class LayerState:
    layer: str
    state: str
    error: str | None = None
    message: str | None = None
    summary: str = ""
    """One short line for the text output ("200 OK", "3 of 3 connects refused")."""


@dataclass(frozen=True)
class Verdict:
    target: str
    status: str
    first_broken_layer: str | None
    error: str | None
    message: str | None
    layers: dict[str, LayerState] = field(default_factory=dict)
    attempts: int = 1

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def to_dict(self) -> dict[str, JSONValue]:
        return {"verdict": self.status, "target": self.target, "first_broken_layer": self.first_broken_layer,
                "error": self.error, "message": self.message, "attempts": self.attempts,
                "layers": {name: asdict(state) for name, state in self.layers.items()}}  # type: ignore[misc]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


def _http_problem(sample: Sample) -> tuple[str, str] | None:
    """(error, message) for an HTTP exchange that completed but must not count as working."""
    fields = sample.fields
    if fields.get("challenge_redirect"):
        where = fields.get("challenge_location") or "a challenge page"
        first = (fields.get("redirects") or [{}])[0]  # type: ignore[index]
        status = first.get("status") if isinstance(first, dict) else None
        return "challenge-redirect", f"HTTP {status or 302} redirect to {where}"
    status = fields.get("status")
    if fields.get("redirect_limit_reached"):
        hops = fields.get("redirects")
        count = len(hops) if isinstance(hops, list) else 0
        return "too-many-redirects", f"still HTTP {status} after {count} redirects (last to {fields.get('final_url')})"
    if isinstance(status, int) and status >= 400:
        reason = fields.get("reason") or ""
        hint = f" ({fields['waf_hint']})" if fields.get("waf_hint") else ""
        return f"http-{status}", f"HTTP {status} {reason}{hint}".strip()
    return None


def _judge_dns(samples: list[Sample]) -> LayerState:
    answered = [s for s in samples if isinstance(s.fields.get("addresses"), list) and s.fields["addresses"]]
    failed = [s for s in samples if not s.ok]
    if not answered:
        first = failed[0] if failed else samples[0]
        errors = sorted({s.error or "no-answer" for s in failed})
        return LayerState("dns", "fail", first.error or "no-answer", first.message,
                          f"no address from {len(samples)} resolver(s): {', '.join(errors)}")
    disagreeing = [s for s in samples if s.fields.get("disagrees_with")]
    if disagreeing:
        views = "; ".join(f"{s.fields.get('resolver')} says {s.fields.get('rcode')} "
                          f"{','.join(str(a) for a in s.fields.get('addresses') or []) or '-'}"  # type: ignore[union-attr]
                          for s in samples if s.fields.get("rcode") is not None)
        return LayerState("dns", "warn", "resolvers-disagree", views, "resolvers disagree")
    if failed:
        first = failed[0]
        return LayerState("dns", "warn", first.error, first.message,
                          f"{len(failed)} of {len(samples)} resolver answers failed")
    first_ok = answered[0]
    addresses = first_ok.fields.get("addresses") or []
    return LayerState("dns", "ok", summary=f"{','.join(str(a) for a in addresses)}")  # type: ignore[union-attr]


def _judge_attempts(layer: str, samples: list[Sample]) -> LayerState:
    problems: list[tuple[Sample, str, str | None]] = []
    for sample in samples:
        if not sample.ok:
            problems.append((sample, sample.error or "error", sample.message))
        elif layer == "http" and (problem := _http_problem(sample)):
            problems.append((sample, problem[0], problem[1]))
    if problems:
        _sample, error, message = problems[-1]  # the latest failure: what the responder sees now
        state = "fail" if len(problems) == len(samples) else "warn"
        summary = f"{len(problems)} of {len(samples)} attempts failed: {error}" if len(samples) > 1 else error
        return LayerState(layer, state, error, message, summary)
    last = samples[-1]
    if layer == "tls":
        days = last.fields.get("days_until_expiry")
        if isinstance(days, (int, float)) and days < EXPIRY_WARN_DAYS:
            return LayerState(layer, "warn", "expires-soon", f"certificate expires in {days:.1f} days",
                              f"expires in {days:.1f} days")
        return LayerState(layer, "ok", summary=f"{last.fields.get('protocol')} verdict ok")
    if layer == "http":
        return LayerState(layer, "ok", summary=f"HTTP {last.fields.get('status')} {last.fields.get('reason') or ''}"
                          .strip())
    return LayerState(layer, "ok", summary=f"{last.fields.get('endpoint', '')}")


def judge(target_text: str, samples: Sequence[Sample], attempts: int = 1) -> Verdict:
    """The verdict for one target from all the Samples of its ``attempts`` layered checks."""
    target = parse_target(target_text)
    applicable = layers_for(target)
    states: dict[str, LayerState] = {}
    for layer in LAYERS:
        if layer not in applicable:
            if layer == "dns":
                states[layer] = LayerState(layer, "skipped", summary="IP literal: no lookup")
            continue
        mine = [s for s in samples if s.kind == layer]
        if not mine:
            states[layer] = LayerState(layer, "not-run", summary="not reached")
        elif layer == "dns":
            states[layer] = _judge_dns(mine)
        else:
            states[layer] = _judge_attempts(layer, mine)
    broken = next((s for s in states.values() if s.state == "fail"), None)
    warned = next((s for s in states.values() if s.state == "warn"), None)
    if broken is None and warned is None and any(s.state == "not-run" for s in states.values()):
        # Nothing failed yet a layer never ran: the check was cut short; do not call that healthy.
        broken = next(s for s in states.values() if s.state == "not-run")
        broken = LayerState(broken.layer, "fail", "not-run", "the check stopped before this layer", broken.summary)
        states[broken.layer] = broken
    worst = broken or warned
    status = "failed" if broken else "degraded" if warned else "healthy"
    return Verdict(target=redact_url(target_text), status=status, first_broken_layer=worst.layer if worst else None,
                   error=worst.error if worst else None, message=worst.message if worst else None,
                   layers=states, attempts=attempts)
