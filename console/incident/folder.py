"""The incident folder: meta, checklist, timeline, findings, recording, rules and report, each its own file.

Every file but the recording is rewritten whole and atomically (write a
temporary file, then rename), so a crash or a quit mid-write never leaves a
half file: resuming an incident loses nothing that was saved.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.engine import paths
from console.incident.checklist import Checklist, ChecklistError
from console.incident.timeline import Timeline

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
META_VERSION = 1


class IncidentError(OSError):
    """An incident folder that cannot be used; the message names it and says why."""


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise IncidentError(f"cannot read {path}: {exc}") from None


@dataclass
class IncidentFolder:
    """One incident's files; ``open`` creates or resumes it."""

    name: str
    path: Path

    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    @property
    def checklist_path(self) -> Path:
        return self.path / "checklist.json"

    @property
    def timeline_path(self) -> Path:
        return self.path / "timeline.json"

    @property
    def findings_path(self) -> Path:
        return self.path / "findings.json"

    @property
    def recording_path(self) -> Path:
        """The recording (console/engine/recorder.py: compressed, capped, rotated into recording.jsonl.zst.2 ...).

        An existing one keeps its name; a new one is zstandard, or gzip where zstandard is missing.
        """
        from console.engine.recorder import SUFFIXES, default_compression

        for suffix in (SUFFIXES["zstd"], SUFFIXES["gzip"], SUFFIXES["plain"]):
            if (self.path / f"recording{suffix}").exists():
                return self.path / f"recording{suffix}"
        return self.path / f"recording{SUFFIXES[default_compression()]}"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_json(self) -> Path:
        return self.path / "report.json"

    @classmethod
    def open(cls, name: str, *, create: bool = True) -> IncidentFolder:
        if not NAME.fullmatch(name):
            raise IncidentError(f"incident name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        path = paths.incident_dir(name)
        if not path.is_dir():
            if not create:
                raise IncidentError(f"no incident called {name!r} in {paths.incidents_dir()}")
            try:
                path.mkdir(parents=True)
            except OSError as exc:
                raise IncidentError(f"cannot create the incident folder {path}: {exc.strerror}") from None
        return cls(name, path)

    @classmethod
    def at(cls, path: Path) -> IncidentFolder:
        """An existing folder given by its path (`warroom report DIR`)."""
        if not (path / "meta.json").is_file():
            raise IncidentError(f"{path} is not an incident folder (no meta.json)")
        return cls(path.name, path)

    @property
    def exists(self) -> bool:
        return self.meta_path.is_file()

    # -- meta -------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        data = _read_json(self.meta_path, {})
        return data if isinstance(data, dict) else {}

    def save_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta_path, json.dumps({"version": META_VERSION, **meta}, indent=1, ensure_ascii=False))

    def start(self, targets: list[str], hosts: list[str], now: float | None = None, *,
              recorded: bool = True) -> tuple[dict[str, Any], bool]:
        """Record a start (new) or a resume; returns the meta and whether it was resumed.

        Each session says whether it recorded its Samples (``recorded``: false for --no-record), so the
        list and the report can say why a recording is missing or has a gap."""
        now = time.time() if now is None else now
        meta = self.meta()
        resumed = bool(meta)
        if not resumed:
            meta = {"name": self.name, "created": now, "targets": [], "hosts": [], "sessions": []}
        meta["targets"] = list(dict.fromkeys([*meta.get("targets", []), *targets]))
        meta["hosts"] = list(dict.fromkeys([*meta.get("hosts", []), *hosts]))
        meta.setdefault("sessions", []).append({"started": now, "recorded": recorded})
        meta["updated"] = now
        meta.pop("version", None)
        self.save_meta(meta)
        return meta, resumed

    def touch(self, **fields: Any) -> None:
        meta = self.meta()
        if not meta:
            return
        meta.pop("version", None)
        meta.update(fields, updated=time.time())
        self.save_meta(meta)

    # -- checklist, timeline, findings -------------------------------------

    def load_checklist(self) -> Checklist:
        data = _read_json(self.checklist_path, None)
        if data is None:
            return Checklist()
        try:
            return Checklist.from_dict(data)
        except ChecklistError as exc:
            raise IncidentError(f"{self.checklist_path}: {exc}") from None

    def save_checklist(self, checklist: Checklist) -> None:
        write_atomic(self.checklist_path, json.dumps(checklist.to_dict(), ensure_ascii=False))

    def load_timeline(self) -> Timeline:
        return Timeline.from_list(_read_json(self.timeline_path, []))

    def save_timeline(self, timeline: Timeline) -> None:
        write_atomic(self.timeline_path, json.dumps(timeline.to_list(), indent=0, ensure_ascii=False))

    def load_findings(self) -> list[dict[str, Any]]:
        data = _read_json(self.findings_path, [])
        return [f for f in data if isinstance(f, dict)] if isinstance(data, list) else []

    def save_findings(self, findings: list[dict[str, Any]]) -> None:
        write_atomic(self.findings_path, json.dumps(findings, ensure_ascii=False))

    def write_report(self, markdown: str, data: dict[str, Any]) -> None:
        write_atomic(self.report_md, markdown)
        write_atomic(self.report_json, json.dumps(data, indent=1, ensure_ascii=False))


@dataclass
class IncidentSummary:
    name: str
    path: Path
    created: float | None
    updated: float | None
    step: str
    done: int
    total: int
    targets: list[str]
    has_report: bool
    size: int = 0
    """Bytes of its folder (recording, checklist, report ...)."""
    unrecorded: int = 0
    """Sessions run with --no-record."""


def list_incidents() -> list[IncidentSummary]:
    """Every incident folder, most recently updated first (a damaged one is listed, not skipped).

    The automatic recordings (one folder per run, console/engine/retention.py) are not incidents."""
    from console.engine.retention import folder_size, is_run_folder

    root = paths.incidents_dir()
    if not root.is_dir():
        return []
    out: list[IncidentSummary] = []
    for path in root.iterdir():
        if not path.is_dir() or not NAME.fullmatch(path.name) or is_run_folder(path):
            continue
        folder = IncidentFolder(path.name, path)
        try:
            meta = folder.meta()
            checklist = folder.load_checklist()
            step = checklist.current_step()
            done, total = checklist.progress()
        except IncidentError:
            meta, step, done, total = {}, "damaged", 0, 0
        sessions = [x for x in meta.get("sessions", []) if isinstance(x, dict)]
        out.append(IncidentSummary(path.name, path, meta.get("created"), meta.get("updated"), step, done, total,
                                   list(meta.get("targets", [])), folder.report_md.is_file(), folder_size(path),
                                   sum(1 for x in sessions if x.get("recorded") is False)))
    return sorted(out, key=lambda s: s.updated or s.created or 0.0, reverse=True)
