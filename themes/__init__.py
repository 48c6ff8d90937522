"""warroom's Textual themes: dark, light, high-contrast and colour-blind-safe, for screens and screen shares.

Widgets use only theme variables ($primary, $error ...), so switching theme
recolours everything. The contrast theme uses few, far-apart colours on pure
black so video compression on a shared screen does not smear them together.
The colour-blind theme uses the Okabe-Ito palette: blue for good and orange
for bad in place of green and red, which the commonest colour-vision
deficiencies cannot tell apart. No state rests on colour alone anyway: every
state has a symbol and a word (``✖ FAIL``, ``▲ LOSS``, ``● OK``).

Over SSH (no COLORTERM) terminals often get 16 or 8 colours, and Textual
rounds every colour to the nearest of them. ``muted`` is chosen per theme so
that muted text (inactive tabs, placeholders, hints) still rounds to a colour
other than the background's, even on an 8-colour terminal; themes/warroom.tcss
points those widgets at it. tests/app/test_colour_systems.py checks every theme.
"""

from __future__ import annotations

from textual.theme import Theme


def _variables(muted: str) -> dict[str, str]:
    """Theme variables beside the base colours: one muted text colour that survives 8-colour terminals."""
    return {"text-muted": muted, "foreground-muted": muted, "text-disabled": muted, "warroom-muted": muted,
            "scrollbar": muted}


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
    variables=_variables("#a8a8a8"),
)

LIGHT = Theme(
    name="warroom-light",
    primary="#005faf",
    secondary="#3a5f87",
    accent="#af5f00",
    foreground="#1c1c1c",
    background="#ffffff",
    surface="#eeeeee",
    panel="#dadada",
    success="#008700",
    warning="#af5f00",
    error="#d70000",
    dark=False,
    variables=_variables("#585858"),
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
    variables=_variables("#c0c0c0"),
)

#: Okabe-Ito (Okabe & Ito 2008, "Color Universal Design"): sky blue for good, orange for bad,
#: yellow for warnings, blue and reddish purple for chrome. No red and green pair anywhere.
COLORBLIND = Theme(
    name="warroom-colorblind",
    primary="#56b4e9",
    secondary="#0072b2",
    accent="#cc79a7",
    foreground="#e0e0e0",
    background="#1c1c1c",
    surface="#262626",
    panel="#303030",
    success="#56b4e9",
    warning="#f0e442",
    error="#e69f00",
    dark=True,
    variables=_variables("#a8a8a8"),
)

THEMES: tuple[Theme, ...] = (DARK, LIGHT, CONTRAST, COLORBLIND)
THEME_NAMES: tuple[str, ...] = tuple(theme.name for theme in THEMES)
DEFAULT_THEME = DARK.name
