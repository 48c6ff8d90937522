"""Modal screens: the help screen and the add-target prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from probes.targets import TargetError, parse_target


class HelpScreen(ModalScreen[None]):
    """Every key binding of the app and its panes, generated from the bindings themselves."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "close", show=False)]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        lines = ["[b]warroom keys[/]  (escape closes)", ""]
        lines += [f"  [b $accent]{escape(key):<12}[/] {escape(description)}" for key, description in self.rows]
        with VerticalScroll():  # more keys than rows at 80x24: up/down scroll
            yield Static("\n".join(lines))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class AddTargetScreen(ModalScreen[str | None]):
    """Ask for a target; only a target that parses is returned."""

    DEFAULT_CSS = """
    AddTargetScreen {
        align: center middle;
    }
    AddTargetScreen > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    AddTargetScreen #error {
        color: $error;
        width: 100%;
        height: auto;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]
    AUTO_FOCUS = "Input"  # the app's own selector (target rows) matches nothing here

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Add a target: host:port, [v6]:port or http(s):// URL  (escape cancels)")
            yield Input(placeholder="127.0.0.1:5432", id="target")
            yield Label("", id="error", markup=False)  # the typed text may hold [brackets]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            parse_target(event.value)
        except TargetError as exc:
            self.query_one("#error", Label).update(str(exc))
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
