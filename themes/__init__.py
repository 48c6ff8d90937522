"""warroom's Textual themes: dark, light, and a high-contrast one for screen sharing.

Widgets use only theme variables ($primary, $error ...), so switching theme
recolours everything. The contrast theme uses few, far-apart colours on pure
black so video compression on a shared screen does not smear them together.
"""

from __future__ import annotations

from textual.theme import Theme

DARK = Theme(
    name="warroom-dark",
    primary="#5fafff",
    secondary="#87afd7",
    accent="#ffaf00",
    foreground="#d0d0d0",
    background="#1c1c1c",
    surface="#262626",
    panel="#303030",
    success="#5fd75f",
    warning="#ffaf00",
    error="#ff5f5f",
    dark=True,
)

LIGHT = Theme(
    name="warroom-light",
    primary="#005faf",
    secondary="#5f87af",
    accent="#af5f00",
    foreground="#1c1c1c",
    background="#ffffff",
    surface="#eeeeee",
    panel="#dadada",
    success="#008700",
    warning="#af5f00",
    error="#d70000",
    dark=False,
)

CONTRAST = Theme(
    name="warroom-contrast",
    primary="#00ffff",
    secondary="#ffffff",
    accent="#ffff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#000000",
    success="#00ff00",
    warning="#ffff00",
    error="#ff0000",
    dark=True,
)

THEMES: tuple[Theme, ...] = (DARK, LIGHT, CONTRAST)
THEME_NAMES: tuple[str, ...] = tuple(theme.name for theme in THEMES)
DEFAULT_THEME = DARK.name
