"""PoolGauges: one gauge per connection pool, plus the socket view's busiest groups.

Needs any of these probes (each yields ``gauges`` in the same shape):

- ``ProbeSpec("pools", options={"pools": [{name, process, remote, max}]})`` -
  socket view, no instrumentation; gauges for declared maxima, and a table of
  (process, remote endpoint) groups with active/idle/CLOSE-WAIT and growth.
- ``ProbeSpec("pg_pool", target=LABEL, options={"dsn": ..., "password_env": ...})``
- ``ProbeSpec("redis_pool", target=LABEL, options={"url": ..., "password_env": ...})``
- ``ProbeSpec("metrics_pool", target=LABEL, options={"url": ..., "used": ..., "max": ...})``

console/settings/pools.py builds all of them from the config file. A gauge
turns warning at ``warning`` % and critical at ``critical`` % and says how
long it has sat at 100%. A probe that fails (unreachable database, wrong
password, a page that is not Prometheus text) shows one line saying so; the
other gauges keep updating.
"""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Static

from console.engine.store import Store
from probes.samples import Sample
from widgets.visibility import every

POOL_KINDS = ("pools", "pg_pool", "redis_pool", "metrics_pool")
BAR_WIDTH = 16
GROUPS_SHOWN = 12


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def tone(util: float | None, warning: float, critical: float) -> str:
    """The theme variable for a utilization: $error, $warning or $success ($text-muted when unknown)."""
    if util is None:
        return "$text-muted"
    if util >= critical:
        return "$error"
    if util >= warning:
        return "$warning"
    return "$success"


#: The word and symbol each tone reads as, so a gauge's state survives no colour (NO_COLOR, 8 colours).
TONE_MARK = {"$error": "✖ FULL", "$warning": "▲ HIGH", "$success": "● ok", "$text-muted": "? n/a"}


def gauge_line(g: dict[str, Any], warning: float, critical: float, name_width: int = 18) -> str:
    """One gauge as a markup line: name, bar, %, used/max, details, time at 100%."""
    util = g.get("util_pct")
    util = float(util) if isinstance(util, (int, float)) else None
    colour = tone(util, warning, critical)
    filled = 0 if util is None else min(BAR_WIDTH, round(BAR_WIDTH * util / 100.0))
    bar = f"[{colour}]{'█' * filled}[/][$text-muted]{'░' * (BAR_WIDTH - filled)}[/]"
    name = str(g.get("name", "?"))
    if len(name) > name_width:
        name = name[: name_width - 1] + "…"
    pct = "  ?%" if util is None else f"{util:3.0f}%"
    used, maximum = g.get("used"), g.get("max")
    counts = f"{used}/{maximum if maximum is not None else '?'}"
    details = []
    for key, label in (("active", "active"), ("idle", "idle"), ("idle_in_tx", "idle-in-tx"),
                       ("waiting", "waiting"), ("close_wait", "CLOSE-WAIT")):
        value = g.get(key)
        if isinstance(value, int) and (value or key in ("active", "idle")):
            text = f"{label} {value}"
            details.append(f"[$warning]{text}[/]" if key in ("waiting", "close_wait", "idle_in_tx") else text)
    at_max = g.get("at_max_s")
    if isinstance(at_max, (int, float)) and at_max > 0:
        details.append(f"[{colour}][b]at 100% for {_duration(at_max)}[/b][/]")
    line = f"{escape(name):<{name_width}} {bar} [{colour}]{pct} {TONE_MARK[colour]:<6}[/] {counts:>7}"
    return line + ("  " + " · ".join(details) if details else "")


class PoolGauges(VerticalScroll, can_focus=True):
    """Pool utilization pane: gauges from every pool probe, then the socket view's groups."""

    DEFAULT_CSS = """
    PoolGauges { height: 1fr; padding: 0 1; }
    PoolGauges > #pool-gauges { height: auto; }
    PoolGauges > #pool-groups { height: auto; margin-top: 1; }
    PoolGauges:focus { background: $surface; }
    """

    def __init__(self, store: Store, host: str | None = None, *, warning: float = 80.0, critical: float = 95.0,
                 refresh_hz: float = 1.0, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.store = store
        self.host = host
        """Only this host's pools; None shows every host's."""
        self.warning = warning
        self.critical = critical
        self.refresh_hz = min(2.0, max(0.1, refresh_hz))
        self._seen_version = -1
        self.lines: list[str] = []
        """The rendered gauge lines (markup), for tests."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static(id="pool-gauges")
        yield Static(id="pool-groups")

    def on_mount(self) -> None:
        every(self, 1.0 / self.refresh_hz, self.refresh_from_store)
        self.refresh_from_store()

    def _latest(self) -> list[Sample]:
        out: list[Sample] = []
        for kind in POOL_KINDS:
            for key in self.store.keys(kind=kind, host=self.host):
                sample = self.store.last(key)
                if sample is not None:
                    out.append(sample)
        return out

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_from_store()

    def refresh_from_store(self) -> None:
        if self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        samples = self._latest()
        lines: list[str] = []
        groups_text: list[str] = []
        multi_host = self.host is None and len({s.host for s in samples}) > 1
        for sample in samples:
            prefix = f"{escape(sample.host)}: " if multi_host else ""
            if not sample.ok:
                what = sample.target or sample.kind
                lines.append(f"[$error]✗ {prefix}{escape(what)}: {escape(str(sample.error))} - "
                             f"{escape(sample.message or '')}[/]")
                continue
            gauges = sample.fields.get("gauges")
            for g in gauges if isinstance(gauges, list) else []:
                if isinstance(g, dict):
                    lines.append(prefix + gauge_line(g, self.warning, self.critical))
            if sample.kind == "pools":
                groups_text.extend(self._groups(sample, prefix))
        if not lines and not groups_text:
            lines = ["[$text-muted]No pool data yet. Start the pools probe (socket view, no setup needed) and "
                     "declare pool maxima in the config ([[pools]] name, process, remote, max) to get gauges; "
                     "[[postgres]], [[redis]] and [[metrics]] sections add the servers' own views.[/]"]
        elif not lines:
            lines = ["[$text-muted]No declared pools: add [[pools]] with a max to the config for gauges "
                     "(utilization and time at 100%). Connections per process and peer below.[/]"]
        self.lines = lines
        self.query_one("#pool-gauges", Static).update("\n".join(lines))
        self.query_one("#pool-groups", Static).update("\n".join(groups_text))

    def _groups(self, sample: Sample, prefix: str) -> list[str]:
        groups = sample.fields.get("groups")
        if not isinstance(groups, list) or not groups:
            return []
        total = sample.fields.get("groups_total", len(groups))
        window = sample.fields.get("growth_window_s", 300)
        out = [f"[b]{prefix}connections by process → peer[/] ({total} groups; "
               f"active = data in the last {int(sample.fields.get('active_ms', 5000)) // 1000}s, "  # type: ignore[arg-type]
               f"growth over {int(window) // 60 if isinstance(window, (int, float)) else 5}m)"]
        for g in groups[:GROUPS_SHOWN]:
            if not isinstance(g, dict):
                continue
            cw = g.get("close_wait") or 0
            growth = g.get("growth") or 0
            cw_text = f" · [$warning]CLOSE-WAIT {cw}[/]" if cw else ""
            growth_text = f" · [$warning]+{growth}[/]" if isinstance(growth, int) and growth > 0 else (
                f" · {growth}" if growth else "")
            out.append(f"  {escape(str(g.get('label')))}: {g.get('open')} open · {g.get('active')} active · "
                       f"{g.get('idle')} idle{cw_text}{growth_text}")
        hidden = sample.fields.get("hidden_sockets")
        if hidden:
            out.append(f"  [$warning]{hidden} sockets of processes this user cannot read; root would show more[/]")
        return out
