"""The Checklist tab's main pane: the five steps, their items, what each run found, and the notes.

The pane renders rows it is given (plain data: the app turns the incident's
checklist into ``ChecklistRow``s) and does no I/O. Keys: up/down move
between items and findings, enter runs an automatic item or ticks a manual
one, + confirms and - rejects the finding under the cursor. It posts
messages; the app does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from widgets.visibility import every


@dataclass(frozen=True)
class ChecklistRow:
    """One line of the pane."""

    kind: str
    """"step", "item", "finding", "line" (a run's result) or "note"."""
    key: str
    """The item id, or the finding's key; "" for rows that cannot be selected."""
    step: str
    markup: str
    """The text, in Textual markup (escaped by the one who built it)."""

    @property
    def selectable(self) -> bool:
        return self.kind in ("item", "finding")


#: () -> (version, rows): the version moves when anything changed, so the pane redraws only then.
RowSource = Callable[[], tuple[int, list[ChecklistRow]]]


class ChecklistPane(VerticalScroll, can_focus=True):
    """Steps and items with a cursor; redraws when the incident changes."""

    DEFAULT_CSS = """
    ChecklistPane {
        border: round $accent;
        border-title-color: $accent;
        padding: 0 1;
        height: 1fr;
    }
    ChecklistPane:focus {
        border: round $primary;
    }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "previous item", show=False),
        Binding("down", "move(1)", "next item", show=False),
        Binding("enter,space", "activate", "run / tick"),
        Binding("plus", "decide('confirmed')", "confirm finding", key_display="+"),
        Binding("minus", "decide('rejected')", "reject finding", key_display="-"),
    ]

    paused: reactive[bool] = reactive(False)

    class Activate(Message):
        """Run (automatic) or tick (manual) the item ``item_id``."""

        def __init__(self, item_id: str) -> None:
            super().__init__()
            self.item_id = item_id

    class Decide(Message):
        """The responder confirms or rejects a finding."""

        def __init__(self, key: str, verdict: str, title: str) -> None:
            super().__init__()
            self.key = key
            self.verdict = verdict
            self.title = title

    def __init__(self, source: RowSource, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.rows: list[ChecklistRow] = []
        self.cursor = 0
        """Index into ``rows`` of the selected row (always a selectable one when there is any)."""
        self._seen_version = -1
        self._body = Static("")
        self.border_title = "Checklist"

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def on_mount(self) -> None:
        every(self, 0.5, self.refresh_rows)
        self.call_after_refresh(self.refresh_rows)

    def refresh_now(self) -> None:
        self.refresh_rows(force=True)

    def refresh_rows(self, force: bool = False) -> None:
        if self.paused and not force:
            return
        version, rows = self.source()
        if version == self._seen_version and not force:
            return
        self._seen_version = version
        selected = self.selected
        self.rows = rows
        if selected is not None:  # keep the cursor on the same item across redraws
            self.cursor = next((i for i, r in enumerate(rows) if r.key == selected.key and r.kind == selected.kind),
                               self.cursor)
        if self.rows and not (0 <= self.cursor < len(self.rows) and self.rows[self.cursor].selectable):
            self.cursor = next((i for i, r in enumerate(self.rows) if r.selectable), 0)
        self._draw()

    def _draw(self) -> None:
        lines = []
        for i, row in enumerate(self.rows):
            prefix = "▶ " if i == self.cursor and row.selectable else "  "
            text = f"{prefix}{row.markup}"
            lines.append(f"[reverse]{text}[/]" if i == self.cursor and row.selectable else text)
        self._body.update("\n".join(lines) or "no checklist")

    @property
    def selected(self) -> ChecklistRow | None:
        if 0 <= self.cursor < len(self.rows) and self.rows[self.cursor].selectable:
            return self.rows[self.cursor]
        return None

    def current_step(self) -> str | None:
        row = self.selected
        return row.step if row else None

    def select(self, key: str) -> bool:
        """Put the cursor on the row with ``key`` (tests and the app's shortcuts)."""
        for i, row in enumerate(self.rows):
            if row.key == key and row.selectable:
                self.cursor = i
                self._draw()
                return True
        return False

    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        i = self.cursor
        for _ in range(len(self.rows)):
            i = (i + delta) % len(self.rows)
            if self.rows[i].selectable:
                break
        self.cursor = i
        self._draw()
        self.scroll_to(y=max(0, i - 3), animate=False)

    def action_activate(self) -> None:
        row = self.selected
        if row is not None and row.kind == "item":
            self.post_message(self.Activate(row.key))

    def action_decide(self, verdict: str) -> None:
        row = self.selected
        if row is not None and row.kind == "finding":
            self.post_message(self.Decide(row.key, verdict, row.markup))
        else:
            self.app.notify("move to a finding (root cause step) to confirm or reject it", timeout=3)
