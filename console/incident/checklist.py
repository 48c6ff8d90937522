"""The five-step checklist: steps, their items, runs with the Samples they measured, ticks and notes.

The method: gather, reproduce, root cause, validate the fix, monitor and
prevent. Each step holds automatic items (they run probes; every run keeps
the Samples it measured and a summary), manual items (a responder ticks them)
and one note. Steps can be done in any order; every tick, run and note edit
carries its timestamp. The model is plain data: it does no I/O and runs
nothing (console/incident/session.py runs the automatic items, folder.py
saves the state), so it is the same in the console, a test and a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.samples import JSONValue, Sample

#: Bumped when the saved shape changes; an older file is read, a newer one refused.
CHECKLIST_VERSION = 1

AUTO = "auto"
MANUAL = "manual"

#: (step id, title, what the step is for) in the method's order.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("gather", "Gather", "hosts, pools, request context, error text, versions"),
    ("reproduce", "Reproduce", "run the failing call again and again, look for a pattern"),
    ("root_cause", "Root cause", "ask why, from the error text down to the cause"),
    ("validate", "Validate the fix", "F marks it; >=95% ok, p99 at most 20% worse"),
    ("monitor", "Monitor and prevent", "alert rules and client-side prevention"),
)
STEP_IDS = tuple(step for step, _, _ in STEPS)

#: (item id, step, kind, title): the items every incident starts with. A title is "label: detail".
ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("host_snapshot", "gather", AUTO, "host snapshot: load, memory, fds, sockets, listeners, pools"),
    ("layered_check", "gather", AUTO, "layered check: every target from every host, resolvers"),
    ("versions", "gather", AUTO, "versions: kernel, OpenSSL, Python, warroom"),
    ("paste_error", "gather", AUTO, "paste the error: layer, failure kind, evidence"),
    ("request_context", "gather", MANUAL, "request context: which call, which caller, since when"),
    ("reproduce", "reproduce", AUTO, "reproduce: re-run N times from this host and each SSH host"),
    ("vary_inputs", "reproduce", MANUAL, "vary the inputs: client, resolver, path; pattern noted"),
    ("findings", "root_cause", AUTO, "findings: ranked, with why-chains and what is ruled out"),
    ("cause_confirmed", "root_cause", MANUAL, "cause confirmed: + confirms, - rejects a finding"),
    ("fix_applied", "validate", MANUAL, "fix applied: F marks the moment"),
    ("fix_validation", "validate", AUTO, "fix validation: before/after per target and pool, verdict"),
    ("alert_rules", "monitor", AUTO, "alert rules: Prometheus, for what was seen (promtool)"),
    ("prevention", "monitor", AUTO, "prevention: timeouts, keep-alive, pools, recovery"),
    ("rules_deployed", "monitor", MANUAL, "rules deployed and the caller's timeouts set"),
)


@dataclass
class Run:
    """One run of an automatic item: when, what it measured (the Samples kept) and what it concluded."""

    started: float
    ended: float | None = None
    samples: list[dict[str, JSONValue]] = field(default_factory=list)
    """Every Sample the run measured, as Sample.to_dict() (so they replay and report as they were)."""
    lines: list[str] = field(default_factory=list)
    """The result as a responder reads it, one line each."""
    summary: dict[str, Any] = field(default_factory=dict)
    """The result as data (for the report's JSON and for later steps)."""
    error: str | None = None
    """Why the run could not finish (None: it did)."""

    @property
    def ok(self) -> bool:
        return self.ended is not None and self.error is None

    def sample_objects(self) -> list[Sample]:
        return [Sample.from_dict(s) for s in self.samples]

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "ended": self.ended, "samples": self.samples, "lines": self.lines,
                "summary": self.summary, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(started=float(data["started"]), ended=data.get("ended"), samples=list(data.get("samples", [])),
                   lines=[str(x) for x in data.get("lines", [])], summary=dict(data.get("summary", {})),
                   error=data.get("error"))


@dataclass
class Tick:
    """A manual item ticked (done=True) or unticked, and when."""

    ts: float
    done: bool


@dataclass
class Item:
    """One thing to do in a step: automatic (it runs) or manual (it is ticked)."""

    id: str
    step: str
    kind: str
    title: str
    ticks: list[Tick] = field(default_factory=list)
    """Every tick and untick, oldest first (manual items)."""
    runs: list[Run] = field(default_factory=list)
    """Every run, oldest first (automatic items)."""

    @property
    def label(self) -> str:
        """The short name before the title's colon ("host snapshot")."""
        return self.title.split(":")[0]

    @property
    def done(self) -> bool:
        if self.kind == AUTO:
            return any(run.ok for run in self.runs)
        return bool(self.ticks) and self.ticks[-1].done

    @property
    def done_at(self) -> float | None:
        if self.kind == AUTO:
            return next((run.ended for run in reversed(self.runs) if run.ok), None)
        return self.ticks[-1].ts if self.done else None

    @property
    def last_run(self) -> Run | None:
        return self.runs[-1] if self.runs else None

    @property
    def running(self) -> bool:
        return bool(self.runs) and self.runs[-1].ended is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "kind": self.kind, "title": self.title,
                "done": self.done, "done_at": self.done_at,
                "ticks": [{"ts": t.ts, "done": t.done} for t in self.ticks],
                "runs": [run.to_dict() for run in self.runs]}


@dataclass
class Decision:
    """A responder's verdict on one finding: "confirmed" or "rejected", and when."""

    key: str
    verdict: str
    ts: float
    title: str


@dataclass
class Note:
    """The note of one step; edited in place, each edit timestamped."""

    text: str = ""
    created: float | None = None
    edited: float | None = None


class ChecklistError(ValueError):
    """A checklist file that cannot be used (wrong shape, a newer version)."""


class Checklist:
    """Five steps of items, the responder's decisions on findings, the fix markers and a note per step."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {iid: Item(iid, step, kind, title) for iid, step, kind, title in ITEMS}
        self.notes: dict[str, Note] = {step: Note() for step in STEP_IDS}
        self.decisions: dict[str, Decision] = {}
        """Confirm/reject per finding, by the finding's key joined with "/"."""
        self.fix_marks: list[float] = []
        """When "fix applied" was pressed, oldest first; the last one is the one being validated."""
        self.selected_step: str | None = None
        """The step the responder chose to work on (None: the first unfinished one)."""

    # -- reading ------------------------------------------------------------

    def step_items(self, step: str) -> list[Item]:
        return [item for item in self.items.values() if item.step == step]

    def progress(self, step: str | None = None) -> tuple[int, int]:
        """(done, total) items of ``step``, or of the whole checklist."""
        items = self.step_items(step) if step else list(self.items.values())
        return sum(1 for i in items if i.done), len(items)

    def current_step(self) -> str:
        """The step chosen last, else the first with an unfinished item, else the last step."""
        if self.selected_step in STEP_IDS:
            return self.selected_step
        for step in STEP_IDS:
            done, total = self.progress(step)
            if done < total:
                return step
        return STEP_IDS[-1]

    @staticmethod
    def step_number(step: str) -> int:
        return STEP_IDS.index(step) + 1

    @staticmethod
    def step_title(step: str) -> str:
        return next(title for sid, title, _ in STEPS if sid == step)

    @property
    def fix_at(self) -> float | None:
        return self.fix_marks[-1] if self.fix_marks else None

    # -- changing -----------------------------------------------------------

    def tick(self, item_id: str, now: float, done: bool | None = None) -> Item:
        """Tick a manual item (or untick it; ``done=None`` toggles)."""
        item = self.items[item_id]
        if item.kind != MANUAL:
            raise ChecklistError(f"{item_id} runs by itself; it is not ticked")
        item.ticks.append(Tick(now, (not item.done) if done is None else done))
        return item

    def start_run(self, item_id: str, now: float) -> Run:
        item = self.items[item_id]
        if item.kind != AUTO:
            raise ChecklistError(f"{item_id} is ticked by hand; it does not run")
        run = Run(started=now)
        item.runs.append(run)
        return run

    def set_note(self, step: str, text: str, now: float) -> Note:
        note = self.notes[step]
        if note.created is None:
            note.created = now
        else:
            note.edited = now
        note.text = text
        return note

    def decide(self, key: str, verdict: str, title: str, now: float) -> Decision:
        if verdict not in ("confirmed", "rejected"):
            raise ChecklistError(f"a finding is confirmed or rejected, not {verdict!r}")
        decision = self.decisions[key] = Decision(key, verdict, now, title)
        return decision

    def mark_fix(self, now: float) -> None:
        self.fix_marks.append(now)
        item = self.items["fix_applied"]
        item.ticks.append(Tick(now, True))

    # -- saving -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKLIST_VERSION,
            "current_step": self.current_step(),
            "selected_step": self.selected_step,
            "steps": [{"id": step, "title": title, "purpose": purpose,
                       "done": self.progress(step)[0], "total": self.progress(step)[1],
                       "note": {"text": self.notes[step].text, "created": self.notes[step].created,
                                "edited": self.notes[step].edited},
                       "items": [item.to_dict() for item in self.step_items(step)]}
                      for step, title, purpose in STEPS],
            "decisions": [{"key": d.key, "verdict": d.verdict, "ts": d.ts, "title": d.title}
                          for d in self.decisions.values()],
            "fix_marks": list(self.fix_marks),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checklist:
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise ChecklistError("not a checklist (no steps)")
        version = data.get("version")
        if not isinstance(version, int) or version > CHECKLIST_VERSION:
            raise ChecklistError(f"checklist version {version!r}: this warroom reads up to {CHECKLIST_VERSION}")
        checklist = cls()
        try:
            for step in data["steps"]:
                note = step.get("note") or {}
                if step["id"] in checklist.notes:
                    checklist.notes[step["id"]] = Note(str(note.get("text", "")), note.get("created"),
                                                       note.get("edited"))
                for raw in step.get("items", []):
                    item = checklist.items.get(raw["id"])
                    if item is None:  # an item a later version dropped: keep it, it is evidence
                        item = checklist.items[raw["id"]] = Item(raw["id"], step["id"], raw["kind"], raw["title"])
                    item.ticks = [Tick(float(t["ts"]), bool(t["done"])) for t in raw.get("ticks", [])]
                    item.runs = [Run.from_dict(r) for r in raw.get("runs", [])]
            for d in data.get("decisions", []):
                checklist.decisions[d["key"]] = Decision(d["key"], d["verdict"], float(d["ts"]), d.get("title", ""))
            checklist.fix_marks = [float(x) for x in data.get("fix_marks", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ChecklistError(f"checklist file is damaged: {exc}") from None
        selected = data.get("selected_step")
        checklist.selected_step = selected if selected in STEP_IDS else None
        return checklist
