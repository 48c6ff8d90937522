"""A running incident: the checklist's automatic items run through the hub, the timeline fills itself.

``IncidentSession`` sits beside the hub and the findings engine (the console
builds one; a headless caller can too). It listens to every Sample: findings
appearing and clearing and SSH hosts connecting and dropping go on the
timeline; its own runs' Samples are kept in the checklist. Automatic items
run their probes on the hub's probe loop and publish what they measure, so
the store, the recording and the panes see the same Samples the checklist
keeps. Every change is saved to the incident folder at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import platform
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console import __version__
from console.diagnosis.engine import FindingsEngine
from console.engine.hub import Hub
from console.incident import alerts, reproduce
from console.incident.checklist import Checklist, Run
from console.incident.classify import classify, link_evidence
from console.incident.folder import IncidentFolder
from console.incident.recording import IncidentRecording, open_recording, read_recording
from console.incident.redaction import Redactor
from console.incident.report import RULE_KINDS, ReportInput, build_report, finding_dict, render_markdown, rule_windows
from console.incident.timeline import Timeline, event_for
from console.incident.validate import JUDGED_KINDS, MAX_BEFORE_S, validate
from probes import registry
from probes.redact import redact_url
from probes.runtime import ProbeSpec, within
from probes.samples import LOCAL_HOST, Sample

if TYPE_CHECKING:
    from console.remote.host import RemoteHost

#: What the timeline says of a session started with --no-record.
NOT_RECORDED = "not recording its Samples (--no-record): the checklist and timeline are kept, the Sample stream is not"

#: Seconds a one-shot host probe (system, conns, pools) may take.
SNAPSHOT_TIMEOUT_S = 10.0
#: Extra seconds allowed to a remote host's run beyond its own rounds (shipping the spec, the SSH hop).
REMOTE_ALLOWANCE_S = 20.0
#: At least this long after the fix, however short the before window was.
MIN_AFTER_S = 2.0


@dataclass
class _Collector:
    """Samples of one remote layered-check run, gathered from the hub's stream."""

    host: str
    target: str
    rounds: int
    samples: list[Sample] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        if sample.kind == reproduce.MARKER_KIND:
            ended = sum(1 for s in self.samples if s.kind == reproduce.MARKER_KIND)
            if ended >= self.rounds:
                self.done.set()


class IncidentSession:
    """One incident as it runs: checklist, timeline, runs, fix validation, rules and report."""

    def __init__(self, hub: Hub, findings: FindingsEngine, *, folder: IncidentFolder | None,
                 targets: list[str], remote: dict[str, RemoteHost] | None = None,
                 host_specs: Sequence[ProbeSpec] = (), redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.time, max_before_s: float = MAX_BEFORE_S,
                 reproduce_interval: float = reproduce.DEFAULT_INTERVAL_S,
                 reproduce_timeout: float = reproduce.DEFAULT_TIMEOUT_S, record: bool = True) -> None:
        self.hub = hub
        self.store = hub.store
        self.findings = findings
        self.folder = folder
        self.targets = targets
        """The console's own list (it changes as targets are added or removed)."""
        self.remote = remote if remote is not None else {}
        self.host_specs = list(host_specs)
        self.redactor = redactor or Redactor()
        self.clock = clock
        self.max_before_s = max_before_s
        self.reproduce_interval = reproduce_interval
        self.reproduce_timeout = reproduce_timeout
        self.checklist = folder.load_checklist() if folder else Checklist()
        self.timeline = folder.load_timeline() if folder else Timeline()
        self.started = clock()
        self.version = 0
        """Bumped on every change: the Checklist and Timeline panes redraw only then."""
        self.recording: IncidentRecording | None = None
        self.record = record
        """Record the Samples in the folder (False: --no-record; the checklist and timeline are still kept)."""
        self.meta: dict[str, Any] = {}
        self.resumed = False
        self.validating_until: float | None = None
        """While the after-fix window runs: when it ends."""
        self.tasks: set[asyncio.Task[Any]] = set()
        self._collectors: list[_Collector] = []
        self._host_states: dict[str, str] = {}
        self._findings_dirty = False
        self._saved_findings: list[dict[str, Any]] = folder.load_findings() if folder else []

    @property
    def name(self) -> str | None:
        return self.folder.name if self.folder else None

    # -- wiring -------------------------------------------------------------

    def attach(self, hosts: Sequence[str] = ()) -> None:
        """Listen to the hub, open the recording, and put the start (or resume) on the timeline."""
        self.hub.listeners.append(self.on_sample)
        now = self.clock()
        if self.folder is not None:
            self.meta, self.resumed = self.folder.start([redact_url(t) for t in self.targets], list(hosts), now,
                                                        recorded=self.record)
            if self.record:
                self.recording = open_recording(self.folder.recording_path, self.redactor)
                self.hub.listeners.append(self.recording)
            what = "resumed" if self.resumed else "started"
            self.timeline.add(now, "incident", f"incident {self.folder.name} {what} on targets "
                                               f"{', '.join(redact_url(t) for t in self.targets) or '(none)'}"
                              + ("" if self.record else f"; {NOT_RECORDED}"))
            self.save()

    def preload(self) -> int:
        """A resumed incident: put its recorded Samples back in the store (not re-recorded)."""
        if self.folder is None or not self.resumed:
            return 0
        samples, _ = read_recording(self.folder.recording_path)
        for sample in samples:
            self.store.add(sample)
        return len(samples)

    def detach(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.on_sample in self.hub.listeners:
            self.hub.listeners.remove(self.on_sample)
        self.save()
        if self.recording is not None:
            if self.recording in self.hub.listeners:
                self.hub.listeners.remove(self.recording)
            self.recording.close()
            self.recording = None

    def changed(self) -> None:
        self.version += 1
        self.save()

    def save(self) -> None:
        if self.folder is None:
            return
        self.folder.save_checklist(self.checklist)
        self.folder.save_timeline(self.timeline)
        if self._findings_dirty:
            self._findings_dirty = False
            self.folder.save_findings(self.finding_dicts())

    def on_sample(self, sample: Sample) -> None:
        event = event_for(sample, self._host_states)
        if event is not None:
            kind, text, ref = event
            self.timeline.add(sample.ts, kind, self.redactor.text(text), ref=ref)
            self.version += 1
            self._findings_dirty = self._findings_dirty or kind == "finding"
            try:  # after the engine's run ends: its states are complete then
                asyncio.get_running_loop().call_soon(self.save)
            except RuntimeError:
                self.save()
        for collector in self._collectors:
            if sample.host == collector.host and sample.target == collector.target and (
                    sample.kind in reproduce.LAYER_KINDS or sample.kind == reproduce.MARKER_KIND):
                collector.add(sample)

    # -- findings -----------------------------------------------------------

    def finding_dicts(self) -> list[dict[str, Any]]:
        """Every finding this incident saw: holding ones (ranked) then cleared ones, with their times."""
        out = [finding_dict(f, self.findings.state_of(f)) for f in self.findings.current]
        out += [finding_dict(s.finding, s) for s in reversed(self.findings.history)]
        keys = {f["key"] for f in out}
        # Findings of earlier sessions of this incident (before a resume) stay in the report.
        out += [f for f in self._saved_findings if f.get("key") not in keys]
        return self.redactor.value(out)  # type: ignore[no-any-return]

    # -- manual items, notes, decisions, the fix -----------------------------

    def tick(self, item_id: str, done: bool | None = None) -> None:
        now = self.clock()
        item = self.checklist.tick(item_id, now, done)
        self.timeline.add(now, "tick", f"{'ticked' if item.done else 'unticked'}: {item.title}", ref=item_id)
        self.changed()

    def set_note(self, step: str, text: str) -> None:
        now = self.clock()
        text = self.redactor.text(text)
        self.checklist.set_note(step, text, now)
        self.timeline.note(now, step, f"{self.checklist.step_title(step)}: {text}")
        self.changed()

    def select_step(self, step: str | None) -> None:
        self.checklist.selected_step = step
        self.changed()

    def decide(self, key: str, verdict: str, title: str) -> None:
        now = self.clock()
        self.checklist.decide(key, verdict, self.redactor.text(title), now)
        self.timeline.add(now, "decision", f"{verdict}: {self.redactor.text(title)}", ref=key)
        self.changed()

    def before_window(self, fix_at: float) -> float:
        """When the before window starts: the first target sample, at most ``max_before_s`` before the fix."""
        first = min((s.ts for key in self.store.keys(kind=None) if key[1] in JUDGED_KINDS and key[2]
                     for s in self.store.window(key, self.max_before_s, now=fix_at)[:1]), default=self.started)
        return max(first, fix_at - self.max_before_s)

    def mark_fix(self) -> float:
        """F: the fix is applied now; measure as long again, then the before/after verdict."""
        now = self.clock()
        self.checklist.mark_fix(now)
        start = self.before_window(now)
        after = max(now - start, MIN_AFTER_S)
        self.validating_until = now + after
        self.timeline.add(now, "fix", f"fix applied; measuring {after:.0f} s after, as long as the "
                                      f"{now - start:.0f} s before", ref="fix_applied")
        self.changed()
        self.spawn(self._validate_later(now, start, now + after))
        return now + after

    async def _validate_later(self, fix_at: float, before_start: float, after_end: float) -> None:
        await asyncio.sleep(max(0.0, after_end - self.clock()))
        run = self.checklist.start_run("fix_validation", self.clock())
        samples = [s for s in self.stored((*JUDGED_KINDS, "tls", "pools", "pg_pool", "redis_pool", "metrics_pool"))
                   if before_start <= s.ts <= after_end]
        labels = [redact_url(t) for t in self.targets]
        result = validate(samples, fix_at, before_start, after_end, targets=labels or None)
        run.summary = result.to_dict()
        run.lines = result.lines()
        run.samples = [self.redactor.value(s.to_dict()) for s in samples if s.ts >= fix_at][:2000]
        run.ended = self.clock()
        self.validating_until = None
        self.timeline.add(run.ended, "run", f"fix validation: {result.verdict.upper()} ({result.why})",
                          ref="fix_validation")
        self.changed()

    # -- running automatic items --------------------------------------------

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run(self, item_id: str, **options: Any) -> Run:
        """Run one automatic item now; its Run (kept in the checklist) says what it measured."""
        runner = {"host_snapshot": self._host_snapshot, "layered_check": self._layered_check,
                  "versions": self._versions, "paste_error": self._paste_error, "reproduce": self._reproduce,
                  "findings": self._findings, "alert_rules": self._alert_rules, "prevention": self._prevention,
                  "fix_validation": self._fix_validation_now}[item_id]
        item = self.checklist.items[item_id]
        if item.running:
            return item.runs[-1]
        run = self.checklist.start_run(item_id, self.clock())
        self.timeline.add(run.started, "run", f"started: {item.title}", ref=item_id)
        self.changed()
        try:
            samples = await runner(run, **options)
        except asyncio.CancelledError:
            run.error = "cancelled"
            run.ended = self.clock()
            self.changed()
            raise
        except Exception as exc:  # a run that breaks is evidence too; it must not take the console down
            run.error = f"{type(exc).__name__}: {exc}"
            samples = []
        run.samples = [self.redactor.value(s.to_dict()) for s in samples]
        run.lines = [self.redactor.text(line) for line in run.lines]
        run.summary = self.redactor.value(run.summary)
        run.ended = self.clock()
        outcome = f"could not finish: {run.error}" if run.error else (run.lines[0] if run.lines else "done")
        self.timeline.add(run.ended, "run", f"{item.label}: {outcome}", ref=item_id)
        self.changed()
        return run

    def _loops(self) -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        home = asyncio.get_running_loop()
        probes = self.hub.probe_loop.loop if self.hub.probe_loop else home
        return home, probes

    def _publisher(self) -> Callable[[Sample], None]:
        home, probes = self._loops()
        if home is probes:
            return self.hub.publish
        def publish(sample: Sample) -> None:
            home.call_soon_threadsafe(self.hub.publish, sample)

        return publish

    async def _stream(self, spec: ProbeSpec, *, first_of_kind: bool = False, budget: float = 60.0) -> list[Sample]:
        """Run ``spec`` where the probes run; publish and return its Samples (the first one only if asked)."""
        publish = self._publisher()

        async def go() -> list[Sample]:
            got: list[Sample] = []
            stream = registry.stream(spec, LOCAL_HOST)
            try:
                async with asyncio.timeout(budget):
                    async for sample in stream:
                        publish(sample)
                        got.append(sample)
                        if first_of_kind and sample.kind == spec.kind:
                            break
            except TimeoutError:
                got.append(Sample(spec.kind, spec.target, time.time(), error="timeout",
                                  message=f"no result within {budget:g} s"))
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
            return got

        return await self.hub.run_on_probe_loop(go())

    async def _remote_layers(self, remote: RemoteHost, target: str, count: int) -> tuple[list[Sample], str]:
        """The layered check ``count`` times from an SSH host, through its running agent."""
        if remote.state != "connected":
            return [], f"{remote.name}: not connected ({remote.state}): skipped"
        run_id = uuid.uuid4().hex[:8]
        spec = ProbeSpec(reproduce.MARKER_KIND, target, interval=self.reproduce_interval,
                         timeout=self.reproduce_timeout, options={"count": count, "mark_rounds": True, "run": run_id})
        collector = _Collector(remote.name, redact_url(target), count)
        self._collectors.append(collector)

        def add() -> None:
            remote.set_specs([*remote.specs, spec])

        def drop() -> None:
            remote.set_specs([s for s in remote.specs if s.options.get("run") != run_id])

        self.hub.call_on_probe_loop(add)
        budget = count * (self.reproduce_interval + self.reproduce_timeout * len(reproduce.LAYER_KINDS)) \
            + REMOTE_ALLOWANCE_S
        note = ""
        try:
            await within(collector.done.wait(), budget)
        except asyncio.TimeoutError:
            note = f"{remote.name}: {sum(1 for s in collector.samples if s.kind == 'layers')} of {count} rounds " \
                   f"within {budget:.0f} s"
        finally:
            self._collectors.remove(collector)
            self.hub.call_on_probe_loop(drop)
        return collector.samples, note

    async def _layers_everywhere(self, targets: Sequence[str], count: int) -> tuple[list[Sample], list[str]]:
        """The layered check of each target ``count`` times from this host and every SSH host, in parallel."""
        jobs: list[Any] = []
        for target in targets:
            spec = ProbeSpec(reproduce.MARKER_KIND, target, interval=self.reproduce_interval,
                             timeout=self.reproduce_timeout, options={"count": count, "mark_rounds": True})
            budget = count * (self.reproduce_interval + self.reproduce_timeout * len(reproduce.LAYER_KINDS) + 1)
            jobs.append(self._stream(spec, budget=budget))
            jobs += [self._remote_layers(remote, target, count) for remote in self.remote.values()]
        results = await asyncio.gather(*jobs)
        samples: list[Sample] = []
        notes: list[str] = []
        for result in results:
            if isinstance(result, tuple):
                samples += result[0]
                if result[1]:
                    notes.append(result[1])
            else:
                samples += result
        return samples, notes

    # -- the items ----------------------------------------------------------

    async def _host_snapshot(self, run: Run) -> list[Sample]:
        specs = [spec if spec.kind != "conns" else ProbeSpec(spec.kind, spec.target, spec.interval, spec.timeout,
                                                             {**spec.options, "table": False})
                 for spec in self.host_specs if spec.kind in ("system", "conns", "pools", "pg_pool", "redis_pool")]
        results = await asyncio.gather(*(self._stream(s, first_of_kind=True, budget=SNAPSHOT_TIMEOUT_S)
                                         for s in specs))
        samples = [s for group in results for s in group]
        for host in self.remote:  # their agents stream the same host probes already: take the newest
            for kind in ("system", "conns", "pools"):
                last = self.store.last((host, kind, ""))
                if last is not None:
                    samples.append(last)
        for host in [LOCAL_HOST, *self.remote]:
            run.lines += snapshot_lines(host, [s for s in samples if s.host == host])
        run.summary = {"hosts": [LOCAL_HOST, *self.remote], "samples": len(samples)}
        return samples

    async def _layered_check(self, run: Run) -> list[Sample]:
        if not self.targets:
            run.error = "no target to check: add one with a"
            return []
        # Here, not at the top: the verdict pulls in every layer probe (httpx, dnspython: ~0.2 s),
        # which the console's first frame should not wait for.
        from console.diagnosis.verdict import judge

        samples, notes = await self._layers_everywhere(self.targets, 1)
        verdicts: list[dict[str, Any]] = []
        for host in [LOCAL_HOST, *self.remote]:
            for target in self.targets:
                label = redact_url(target)
                mine = [s for s in samples if s.host == host and s.target == label and s.kind in reproduce.LAYER_KINDS]
                if not mine:
                    continue
                verdict = judge(target, mine)
                where = f"{host}: " if self.remote else ""
                if verdict.healthy:
                    run.lines.append(f"{where}{verdict.target} healthy")
                else:
                    run.lines.append(f"{where}{verdict.target} {verdict.status.upper()} at "
                                     f"{verdict.first_broken_layer} ({verdict.error}): {verdict.message}")
                verdicts.append({"host": host, **verdict.to_dict()})
        resolvers = sorted({f"{s.fields.get('resolver')} ({s.fields.get('source')})" for s in samples
                            if s.kind == "dns" and s.fields.get("resolver")})
        run.lines.append("resolvers in use: " + (", ".join(resolvers) if resolvers else "none asked (IP literals)"))
        run.lines += notes
        run.summary = {"verdicts": verdicts, "resolvers": resolvers}
        return samples

    async def _versions(self, run: Run) -> list[Sample]:
        fields: dict[str, Any] = {"kernel": platform.release(), "openssl": ssl.OPENSSL_VERSION,
                                  "python": sys.version.split()[0], "warroom": __version__,
                                  "platform": platform.platform()}
        sample = Sample("versions", "", self.clock(), fields)
        self.hub.publish(sample)
        samples = [sample]
        run.lines.append(f"local: kernel {fields['kernel']}, {fields['openssl']}, Python {fields['python']}, "
                         f"warroom {fields['warroom']}")
        for host in self.remote:
            status = self.store.last((host, "host_status", ""))
            python = status.fields.get("python") if status is not None else None
            run.lines.append(f"{host}: Python {python or 'unknown (not connected yet)'} (from its agent's hello)")
            if status is not None:
                samples.append(status)
        run.summary = fields
        return samples

    async def _paste_error(self, run: Run, text: str = "") -> list[Sample]:
        text = self.redactor.text(text.strip())
        if not text:
            run.error = "nothing pasted"
            return []
        result = link_evidence(classify(text), self.store, self.findings.current)
        run.lines = result.lines()
        run.summary = result.to_dict()
        keys = {(link.host, link.kind, link.target) for link in result.evidence}
        return [s for key in keys for s in self.store.window(key, 600.0)[-5:]]

    def failing_targets(self) -> list[str]:
        """The targets to reproduce: those the findings name first, else those failing now, else all."""
        by_label = {redact_url(t): t for t in self.targets}
        named = [by_label[f.target] for f in self.findings.current
                 if f.target in by_label and f.severity in ("warning", "critical")]
        if named:
            return list(dict.fromkeys(named))
        failing = [t for t in self.targets
                   if any(not s.ok for k in self.store.keys(kind=None) if k[2] == redact_url(t) and k[1] in JUDGED_KINDS
                          for s in self.store.window(k, 60.0))]
        return failing or list(self.targets)

    async def _reproduce(self, run: Run, count: int = reproduce.DEFAULT_COUNT,
                         targets: Sequence[str] | None = None) -> list[Sample]:
        chosen = list(targets) if targets else self.failing_targets()
        if not chosen:
            run.error = "no target to reproduce: add one with a"
            return []
        samples, notes = await self._layers_everywhere(chosen, count)
        rounds = reproduce.rounds_of(samples)
        analyses = [reproduce.analyse(redact_url(t), rounds) for t in chosen]
        for analysis in analyses:
            run.lines += analysis.lines()
        run.lines += notes
        run.summary = {"count": count, "targets": [redact_url(t) for t in chosen],
                       "results": [a.to_dict() for a in analyses]}
        return samples

    async def _findings(self, run: Run) -> list[Sample]:
        self.findings.run_once()
        current = self.findings.current
        dicts = [finding_dict(f, self.findings.state_of(f)) for f in current]
        for i, f in enumerate(current, start=1):
            where = f"{f.target} from {f.host}" if f.target else "this host"
            run.lines.append(f"{i}. [{f.severity}] {f.layer}: {f.title} ({where})")
            if f.chain:
                run.lines.append("   why: " + " <- ".join(f.chain))
            if f.ruled_out:
                run.lines.append("   ruled out: " + "; ".join(f.ruled_out))
        if not current:
            run.lines.append("no finding holds now")
        run.summary = {"findings": dicts}
        return [s for f in current for key in f.series for s in self.store.window(key, f.window_s or 60.0)[-3:]]

    async def _fix_validation_now(self, run: Run) -> list[Sample]:
        run.error = "press F when the fix is applied: the validation starts from that moment"
        return []

    def labelled(self, sample: Sample) -> Sample:
        """``sample`` with its target as the user sees it (some probes report a URL target with its password)."""
        if not sample.target or not self.redactor.needs(sample.target):
            return sample
        return dataclasses.replace(sample, target=self.redactor.text(sample.target))

    def stored(self, kinds: Sequence[str] | None = None) -> list[Sample]:
        """Every Sample the store holds (of ``kinds``), targets labelled, oldest first."""
        keys = [k for k in self.store.keys(kind=None) if (kinds is None or k[1] in kinds) and k[1] != "conns_table"]
        return sorted((self.labelled(s) for k in keys for s in self.store.window(k, None)), key=lambda s: s.ts)

    def measured_windows(self) -> tuple[list[Sample], list[Sample]]:
        """(incident samples, healthy samples) for the rules: before/after the fix when it was validated."""
        return rule_windows(self.stored(RULE_KINDS), self.checklist)

    def ruleset(self) -> alerts.RuleSet:
        bad, good = self.measured_windows()
        rs = alerts.build_rules(self.name or "console", bad, good, self.finding_dicts())
        return rs

    async def _alert_rules(self, run: Run) -> list[Sample]:
        rs = self.ruleset()
        directory = self.folder.path if self.folder else Path(self.report_folder().path)
        _, _, checked = await asyncio.to_thread(alerts.write_and_check, rs, directory)
        run.lines = [f"{r.alert} ({r.severity}, for {r.for_}): {r.expr}" for r in rs.rules] or [
            "no rule: nothing failed often enough to alert on"]
        run.lines += [f"no rule: {text}" for text in rs.skipped] + checked
        run.lines.append(f"written to {directory / 'alerts.yml'} (and its promtool test alerts.test.yml)")
        run.summary = {"rules": [r.to_dict() for r in rs.rules], "yaml": rs.rules_yaml(), "promtool": checked,
                       "skipped": rs.skipped}
        return []

    async def _prevention(self, run: Run) -> list[Sample]:
        bad, good = self.measured_windows()
        advice = alerts.prevention(bad, good, self.finding_dicts())
        run.lines = [f"{a.area}: {a.text} ({a.why})" for a in advice]
        run.summary = {"advice": [a.to_dict() for a in advice]}
        return []

    # -- the report ---------------------------------------------------------

    def report_folder(self) -> IncidentFolder:
        """This incident's folder; a console started without --incident gets one named by the time."""
        if self.folder is None:
            name = time.strftime("console-%Y%m%d-%H%M%S", time.gmtime(self.clock()))
            self.folder = IncidentFolder.open(name)
            self.folder.start([redact_url(t) for t in self.targets], list(self.remote), self.clock())
            self._findings_dirty = True
            self.save()
        return self.folder

    def report_input(self) -> ReportInput:
        samples = self.stored()
        rs = self.ruleset()
        promtool_lines = []
        last_rules = self.checklist.items["alert_rules"].last_run
        if last_rules is not None and last_rules.ok:
            promtool_lines = list(last_rules.summary.get("promtool", []))
        return ReportInput(name=self.name or "console", source="incident", samples=samples,
                           findings=self.finding_dicts(), checklist=self.checklist, timeline=self.timeline,
                           meta=self.meta, rules=rs, promtool=promtool_lines, generated_at=self.clock())

    def write_report(self) -> tuple[Path, Path, int]:
        """e: write report.md and report.json into the incident folder; returns their paths and the size."""
        folder = self.report_folder()
        report = build_report(self.report_input(), self.redactor)
        markdown = render_markdown(report)
        folder.write_report(markdown, report)
        now = self.clock()
        self.timeline.add(now, "run", f"report written ({len(markdown.encode())} bytes)", ref="report")
        folder.touch(report_at=now)
        self.changed()
        return folder.report_md, folder.report_json, len(markdown.encode())


def snapshot_lines(host: str, samples: Sequence[Sample]) -> list[str]:
    """One host's pressure as a responder reads it: load, memory, fds, connection states, listeners, pools."""
    lines: list[str] = []
    by_kind: dict[str, Sample] = {}
    for sample in samples:
        by_kind[sample.kind] = sample
    system = by_kind.get("system")
    if system is not None and system.ok:
        f: dict[str, Any] = dict(system.fields)
        lines.append(f"{host}: load {f.get('load1')}/{f.get('load5')}/{f.get('load15')} on {f.get('cpu_count')} "
                     f"CPUs, memory {f.get('mem_percent')}%, fds {f.get('open_fds')} of {f.get('fd_max')}, "
                     f"{f.get('procs')} processes")
    elif system is not None:
        lines.append(f"{host}: system probe failed: {system.message}")
    conns = by_kind.get("conns")
    if conns is not None and conns.ok:
        c: dict[str, Any] = dict(conns.fields)
        raw_states = c.get("by_state")
        states: dict[str, Any] = raw_states if isinstance(raw_states, dict) else {}
        top = sorted(states.items(), key=lambda kv: -int(kv[1]))[:6]
        lines.append(f"{host}: sockets {c.get('total')}: " + ", ".join(f"{k} {v}" for k, v in top))
        ports: list[Any] = c.get("listen_ports") or []
        lines.append(f"{host}: listening on {', '.join(str(p) for p in ports[:20]) or 'nothing'}"
                     + (f"; MISSING {c.get('listen_missing')}" if c.get("listen_missing") else ""))
        if c.get("conntrack_pct") is not None:
            lines.append(f"{host}: conntrack {c.get('conntrack_count')} of {c.get('conntrack_max')} "
                         f"({c.get('conntrack_pct')}%), ephemeral ports busiest {c.get('ephemeral_pct')}%")
    for kind in ("pools", "pg_pool", "redis_pool"):
        pool = by_kind.get(kind)
        if pool is None:
            continue
        p: dict[str, Any] = dict(pool.fields)
        gauges = [g for g in (p.get("gauges") or []) if isinstance(g, dict)]
        groups = [g for g in (p.get("groups") or []) if isinstance(g, dict)]
        if gauges:
            lines.append(f"{host}: pools: " + ", ".join(f"{g.get('name')} {g.get('used')}/{g.get('max')}"
                                                         for g in gauges))
        elif groups and kind == "pools":
            busiest = sorted(groups, key=lambda g: -int(g.get("open") or 0))[:3]
            lines.append(f"{host}: connection groups: " + ", ".join(
                f"{g.get('process')} -> {g.get('endpoint')} {g.get('open')} open" for g in busiest))
        if not pool.ok:
            lines.append(f"{host}: {kind} probe failed: {pool.message}")
    if not lines:
        lines.append(f"{host}: no snapshot (the host's probes have not reported yet)")
    return lines
