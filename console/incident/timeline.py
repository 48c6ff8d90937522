"""The timeline: everything with a timestamp, in one list.

Findings appearing and clearing, checklist ticks and runs, fix-applied
markers, SSH hosts connecting and dropping, notes (editable: an edit changes
the entry in place and records when), and the incident starting or resuming.
Plain data; folder.py saves it and the Timeline pane and the report read it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from probes.samples import Sample

#: The kinds of entry, so a reader can filter or colour them.
KINDS = ("incident", "finding", "tick", "run", "fix", "host", "note", "decision", "error")
#: host_status states that mean "this host dropped".
DROP_STATES = frozenset({"reconnecting", "auth_failed", "host_key_unknown", "host_key_changed", "agent_failed",
                         "config_error"})
#: Entries kept at most (a day-long flapping finding must not grow the file without end).
MAX_EVENTS = 5000


@dataclass
class Event:
    """One timestamped thing that happened during the incident."""

    id: int
    ts: float
    kind: str
    text: str
    ref: str = ""
    """What it is about: an item id, a finding key, a host name, a step id."""
    edited: float | None = None
    """Notes: when the text was last changed."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "utc": utc(self.ts), "kind": self.kind, "text": self.text,
                "ref": self.ref, "edited": self.edited}


def utc(ts: float) -> str:
    """An ISO 8601 UTC time to the second, as the report and the pane print it."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


class Timeline:
    """Entries in time order; ``version`` moves on every change so a pane redraws only then."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.version = 0
        self._next_id = 1

    def add(self, ts: float, kind: str, text: str, ref: str = "") -> Event:
        event = Event(self._next_id, ts, kind, text, ref)
        self._next_id += 1
        self.events.append(event)
        if len(self.events) > 1 and self.events[-2].ts > ts:  # a late arrival (a remote host's clock)
            self.events.sort(key=lambda e: e.ts)
        del self.events[:-MAX_EVENTS]
        self.version += 1
        return event

    def note(self, ts: float, step: str, text: str) -> Event:
        """The note of ``step``: one entry per step, edited in place when the note changes."""
        for event in self.events:
            if event.kind == "note" and event.ref == step:
                event.text = text
                event.edited = ts
                self.version += 1
                return event
        return self.add(ts, "note", text, ref=step)

    def to_list(self) -> list[dict[str, Any]]:
        return [event.to_dict() for event in self.events]

    @classmethod
    def from_list(cls, data: Any) -> Timeline:
        timeline = cls()
        if not isinstance(data, list):
            return timeline
        for raw in data:
            if not isinstance(raw, dict) or not isinstance(raw.get("ts"), (int, float)):
                continue
            event = Event(int(raw.get("id", 0)), float(raw["ts"]), str(raw.get("kind", "")),
                          str(raw.get("text", "")), str(raw.get("ref", "")), raw.get("edited"))
            timeline.events.append(event)
        timeline.events.sort(key=lambda e: e.ts)
        timeline._next_id = max((e.id for e in timeline.events), default=0) + 1
        return timeline


def event_for(sample: Sample, host_states: dict[str, str]) -> tuple[str, str, str] | None:
    """The timeline entry a Sample makes, as (kind, text, ref), or None.

    Findings appearing or clearing (``finding`` Samples), and SSH hosts connecting or dropping
    (``host_status`` Samples whose state changed; ``host_states`` remembers the last state per host).
    """
    if sample.kind == "finding":
        fields = sample.fields
        text = f"{fields.get('change')}: [{fields.get('severity')}] {fields.get('title', '')}"
        return "finding", text, str(fields.get("rule", ""))
    if sample.kind == "host_status":
        state = str(sample.fields.get("state", ""))
        before = host_states.get(sample.host)
        host_states[sample.host] = state
        if state == "connected" and before != "connected":
            return "host", f"{sample.host} connected", sample.host
        if state in DROP_STATES and before not in DROP_STATES:
            return "host", f"{sample.host} dropped: {sample.message or state}", sample.host
    return None


def from_samples(samples: Iterable[Sample]) -> Timeline:
    """The timeline a bare recording implies: its findings and host connects and drops."""
    timeline = Timeline()
    states: dict[str, str] = {}
    for sample in sorted(samples, key=lambda s: s.ts):
        event = event_for(sample, states)
        if event is not None:
            timeline.add(sample.ts, *event)
    return timeline
