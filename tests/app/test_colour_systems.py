"""Every theme stays readable where colours are few: 16 colours (TEXTUAL_COLOR_SYSTEM=standard, what
Textual picks over SSH without COLORTERM), 8 colours (bright colours fold onto the basic eight), and
NO_COLOR (Textual's Monochrome filter; the focused row and active tab keep a mark that needs no colour).

"Readable" here means what a viewer would check first: no visible character is drawn in the colour
of its own background once the colours are rounded the way the terminal rounds them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.style import Style
from textual.color import Color

from console.ui.app import WarroomApp
from tests.conftest import fixed_app
from tests.tmux_server import stop_tmux_server
from themes import THEME_NAMES, THEMES

ROOT = Path(__file__).resolve().parents[2]
#: Colours widgets draw text in, and the backgrounds they draw it on.
TEXT_VARIABLES = ("foreground", "primary", "secondary", "accent", "success", "warning", "error", "warroom-muted")
BACKGROUNDS = ("background", "surface", "panel")


def standard(colour: RichColor | None, default: int) -> int:
    """The 16-colour number rich (and so Textual) writes for ``colour`` under the standard system."""
    if colour is None or colour.is_default:
        return default
    number = colour.downgrade(ColorSystem.STANDARD).number
    return default if number is None else number


def decorative(char: str) -> bool:
    """Box drawing and fill blocks (borders, tab underlines, scrollbar ends): no meaning of their own.

    The eighths blocks ▁..█ are kept: sparklines and gauges carry figures in them.
    """
    code = ord(char)
    return 0x2500 <= code <= 0x257F or (0x2580 <= code <= 0x259F and not 0x2581 <= code <= 0x2588)


def cells(app: WarroomApp) -> Iterator[tuple[int, int, str, Style]]:
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        x = 0
        for segment in strip:
            if segment.control:
                continue
            for char in segment.text:
                if segment.style is not None:
                    yield x, y, char, segment.style
                x += 1


def unreadable(app: WarroomApp, colours: int) -> list[str]:
    """Visible characters whose colour rounds to their background's (16 or 8 colours).

    Under a modal screen the screen behind is dimmed on purpose; only the modal's own widgets count.
    """
    found = []
    for x, y, char, style in cells(app):
        if char.isspace() or decorative(char):
            continue
        fg, bg = standard(style.color, 7), standard(style.bgcolor, 0)
        if style.reverse:
            fg, bg = bg, fg
        if (fg == bg) if colours == 16 else (fg % 8 == bg % 8):
            widget, _ = app.screen.get_widget_at(x, y)
            if widget is app.screen and app.screen.is_modal:
                continue
            found.append(f"{char!r} at {x},{y} in {type(widget).__name__} ({style.color} on {style.bgcolor})")
    return found


@pytest.mark.parametrize("theme", THEME_NAMES)
def test_theme_text_colours_round_apart_from_backgrounds(theme: str) -> None:
    """Every text colour a widget may use stays distinct from every background, in 16 and in 8 colours."""
    chosen = next(t for t in THEMES if t.name == theme)
    variables = {**chosen.to_color_system().generate(), **chosen.variables}  # as App.get_css_variables
    clashes = []
    for text in TEXT_VARIABLES:
        for background in BACKGROUNDS:
            fg = standard(Color.parse(variables[text]).rich_color, 7)
            bg = standard(Color.parse(variables[background]).rich_color, 0)
            if fg % 8 == bg % 8:
                clashes.append(f"${text} {variables[text]} on ${background} {variables[background]}: {fg} on {bg}")
    assert not clashes, clashes


@pytest.mark.parametrize("theme", THEME_NAMES)
async def test_every_tab_is_readable_in_16_and_8_colours(theme: str) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.pause(1.2)  # the panes' first refresh
        problems = []
        for tab in "12345678":
            await pilot.press(tab)
            await pilot.pause(0.2)
            problems += [f"tab {tab}, 16 colours: {p}" for p in unreadable(app, 16)]
            problems += [f"tab {tab}, 8 colours: {p}" for p in unreadable(app, 8)]
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        problems += [f"help, 8 colours: {p}" for p in unreadable(app, 8)]
        assert not problems, "\n".join(problems[:20])


async def test_no_color_marks_focus_and_active_tab_without_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = fixed_app()
    assert app.no_color  # Textual read it: its Monochrome filter turns every colour grey
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        grey = {s.color.triplet for _, _, _, s in cells(app) if s.color is not None and s.color.triplet is not None}
        assert grey and all(t.red == t.green == t.blue for t in grey), "a colour survived NO_COLOR"
        focused = app.focused
        assert focused is not None and type(focused).__name__ == "TargetRow"
        region = focused.region
        marked = {(x, y) for x, y, char, style in cells(app) if style.reverse and region.contains(x, y)}
        assert marked, "the focused target row has no mark but colour under NO_COLOR"
        tabs = [(x, y, char) for x, y, char, style in cells(app) if y == 1 and style.reverse and not char.isspace()]
        assert "".join(c for _, _, c in tabs).strip().startswith("1"), "the active tab is not marked under NO_COLOR"


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def parse_sgr_screen(text: str) -> list[tuple[str, int | None, int | None]]:
    """(char, fg, bg) for each character of tmux's capture-pane -e output (16-colour codes only)."""
    fg: int | None = None
    bg: int | None = None
    out = []
    pos = 0
    for match in SGR.finditer(text + "\x1b[m"):
        out += [(char, fg, bg) for char in text[pos:match.start()]]
        pos = match.end()
        codes = [int(c) if c else 0 for c in match.group(1).split(";")]
        while codes:
            code = codes.pop(0)
            if code == 0:
                fg = bg = None
            elif code in (38, 48):
                raise AssertionError(f"a 256-colour or truecolor code reached a 16-colour terminal: {match.group(0)!r}")
            elif 30 <= code <= 37 or 90 <= code <= 97:
                fg = code - 30 if code < 90 else code - 90 + 8
            elif code == 39:
                fg = None
            elif 40 <= code <= 47 or 100 <= code <= 107:
                bg = code - 40 if code < 100 else code - 100 + 8
            elif code == 49:
                bg = None
    return out


def test_console_in_tmux_over_a_16_colour_terminal(tmp_path: Path) -> None:
    """The real console in tmux with TERM=xterm and no COLORTERM, as over SSH: only 16-colour codes, readable."""
    socket = f"warroom-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR", "TMUX")}
    env.update(TERM="xterm", TEXTUAL_COLOR_SYSTEM="standard", XDG_DATA_HOME=str(tmp_path))
    command = f"cd {ROOT} && TERM=xterm TEXTUAL_COLOR_SYSTEM=standard {sys.executable} -m console.cli"
    subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "c", "-x", "80", "-y", "24",
                    command], check=True, env=env)
    try:
        deadline = time.monotonic() + 20
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-e", "-t", "c"],
                                    capture_output=True, text=True, check=True).stdout
            if "Targets" in screen and "CPU" in screen:
                break
            time.sleep(0.2)
        assert "Targets" in screen and "CPU" in screen, screen
        cells_ = parse_sgr_screen(screen)
        coloured = [(f, b) for c, f, b in cells_ if not c.isspace() and f is not None]
        assert coloured, "no colour at all: the 16-colour palette was not used"
        clashes = [c for c, f, b in cells_ if not c.isspace() and not decorative(c)
                   and f is not None and b is not None and f % 8 == b % 8]
        assert not clashes, f"{len(clashes)} characters vanish into their background on 8 colours: {clashes[:20]}"
    finally:
        stop_tmux_server(socket)
