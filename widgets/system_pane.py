"""The system pane: is this host itself under pressure? CPU, memory, load, fds, top processes."""

from __future__ import annotations

from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Static

from console.engine.store import Store
from probes.samples import LOCAL_HOST
from widgets.format import short
from widgets.visibility import when_shown


def _bar(percent: float, width: int = 10) -> str:
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _level(percent: float) -> str:
    return "$error" if percent >= 90 else "$warning" if percent >= 75 else "$success"


def _level_word(percent: float) -> str:
    """What the bar's colour says, in a symbol and a word (colour alone is lost without colour)."""
    return " [b $error]✖ CRITICAL[/]" if percent >= 90 else " [b $warning]▲ HIGH[/]" if percent >= 75 else ""


class SystemPane(Static):
    """Reads the latest `system` Sample for its host; needs the system probe running."""

    DEFAULT_CSS = """
    SystemPane {
        height: auto;
        max-height: 9;
        border: round $secondary;
        border-title-color: $secondary;
        padding: 0 1;
    }
    """

    paused: reactive[bool] = reactive(False)

    def __init__(self, store: Store, host: str = LOCAL_HOST, *, id: str | None = None) -> None:
        super().__init__("waiting for the first system reading (about 1 s)…", id=id)
        self.store = store
        self.host = host
        self._seen_version = -1
        self._shown = ""
        self.border_title = f"System ({host})"

    def on_mount(self) -> None:
        self.set_interval(1.0, when_shown(self, self.refresh_figures))
        self.call_after_refresh(self.refresh_figures)

    def refresh_now(self) -> None:
        """Redraw at once, shown or not (the app calls it when this pane's tab is shown)."""
        self.refresh_figures()

    def refresh_figures(self) -> None:
        if self.paused or self.store.version == self._seen_version:
            return
        self._seen_version = self.store.version
        sample = self.store.last((self.host, "system", ""))
        if sample is None:
            return
        if not sample.ok:
            self.update(f"[$error]system probe failed: {escape(sample.message or sample.error or '')}[/]")
            return
        f = sample.fields
        cpu = float(f.get("cpu_percent") or 0.0)  # type: ignore[arg-type]
        mem = float(f.get("mem_percent") or 0.0)  # type: ignore[arg-type]
        lines = [
            f"CPU  [{_level(cpu)}]{_bar(cpu)}[/] {cpu:5.1f}%{_level_word(cpu)}   load {f.get('load1')} "
            f"{f.get('load5')} {f.get('load15')} ({f.get('cpu_count')} cores)",
            f"MEM  [{_level(mem)}]{_bar(mem)}[/] {mem:5.1f}%{_level_word(mem)}   {f.get('mem_used_mb')}/"
            f"{f.get('mem_total_mb')} MB   swap {f.get('swap_percent')}%",
            f"FDs  {f.get('open_fds')} open of {f.get('fd_max')}   processes {f.get('procs')}",
        ]
        top = f.get("top")
        if isinstance(top, list) and top:
            lines.append("[dim]top CPU:[/] " + "  ".join(
                f"{escape(short(str(p.get('name')), 14))}({p.get('pid')}) {p.get('cpu')}%"
                for p in top[:3] if isinstance(p, dict)))
        text = "\n".join(lines)
        if text != self._shown:
            self._shown = text
            self.update(text)
