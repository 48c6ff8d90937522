"""Modal screens of the incident: edit a step's note, paste an error text, choose how often to reproduce."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, TextArea

_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 76;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $primary;
    background: $surface;
    padding: 0 1;
}}
{name} TextArea {{
    height: 8;
}}
{name} #error {{
    color: $error;
}}
"""


class TextScreen(ModalScreen[str | None]):
    """A text area to write or paste into; ctrl+s keeps it, escape drops it."""

    DEFAULT_CSS = _CSS.format(name="TextScreen")
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False),
                Binding("ctrl+s", "save", "save", show=False)]
    AUTO_FOCUS = "TextArea"

    def __init__(self, title: str, text: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.initial = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.title_text}  (ctrl+s saves, escape cancels)")
            yield TextArea(self.initial, id="text", soft_wrap=True)

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CountScreen(ModalScreen[int | None]):
    """How many times to re-run the failing target (1-1000)."""

    DEFAULT_CSS = _CSS.format(name="CountScreen")
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]
    AUTO_FOCUS = "Input"

    def __init__(self, default: int, targets: list[str]) -> None:
        super().__init__()
        self.default = default
        self.targets = targets

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Re-run {', '.join(self.targets) or 'the targets'} how many times, from this host and "
                        "every SSH host? (enter runs, escape cancels)")
            yield Input(str(self.default), id="count")
            yield Label("", id="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            self.query_one("#error", Label).update("a whole number from 1 to 1000")
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
