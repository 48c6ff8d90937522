"""Share mode: bigger key figures and no real address, host or user name on screen or in a screen dump.

The redaction happens in one place every drawn character passes through: a
Textual line filter (``ShareFilter``) that the App returns from
``get_line_filters`` while share mode is on. Every widget's lines go through
it as they are rendered, so panes need no share-mode code, a pane added later
is covered too, and ``save_screenshot`` (which composes the same lines) dumps
what the screen shows. The names and their aliases come from
console/engine/aliases.py; the alias file sits in the incident's folder and is
never drawn.

A replacement keeps the line's width: a shorter alias is padded where its word
ends ("host-5:5432" stays one word, the spaces go after it), a longer one takes
its extra cells from the nearest run of spaces after it (then from the line's
end), so columns and borders stay where they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter

from console.engine.aliases import AliasMap, Redactor, default_aliases_path
from probes.samples import Sample


class ShareFilter(LineFilter):
    """Replaces every address and known name in a rendered line by its alias, keeping the line's width."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    # Textual caches filtered lines per (filter, background): a new known name must miss that cache.
    def __hash__(self) -> int:
        return hash((id(self), self.redactor.generation))

    def __eq__(self, other: object) -> bool:
        return other is self

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if any(segment.control for segment in segments):
            return segments
        line = "".join(segment.text for segment in segments)
        spans = self.redactor.spans(line)
        if not spans:
            return segments
        return redact_segments(segments, line, spans)


def redact_segments(segments: list[Segment], line: str, spans: list[tuple[int, int, str]]) -> list[Segment]:
    """``segments`` (whose text is ``line``) with each span replaced by its alias, as wide as before."""
    styles: list[Style | None] = []
    for segment in segments:
        styles.extend([segment.style] * len(segment.text))
    cells: list[tuple[str, Style | None]] = []
    pos = 0
    extra = 0
    reclaim_from: list[int] = []
    pad = 0
    pad_style: Style | None = None

    def copy(upto: int) -> None:
        """line[pos:upto] into cells, with any owed padding placed where the current word ends."""
        nonlocal pad
        for index in range(pos, upto):
            if pad and line[index] == " ":
                cells.extend((" ", pad_style) for _ in range(pad))
                pad = 0
            cells.append((line[index], styles[index]))

    for start, end, alias in spans:
        copy(start)
        width = cell_len(line[start:end])
        cells.extend((char, styles[start]) for char in alias)
        if len(alias) < width:
            pad += width - len(alias)
            pad_style = styles[end - 1]
        elif len(alias) > width:
            extra += len(alias) - width
            reclaim_from.append(len(cells))
        pos = end
    copy(len(line))
    cells.extend((" ", pad_style) for _ in range(pad))
    if extra:
        cells = _reclaim(cells, extra, reclaim_from[0] if reclaim_from else 0)
    out: list[Segment] = []
    text = ""
    current: Style | None = None
    for char, style in cells:
        if style is not current and text:
            out.append(Segment(text, current))
            text = ""
        current = style
        text += char
    if text:
        out.append(Segment(text, current))
    return out


def _reclaim(cells: list[tuple[str, Style | None]], extra: int, after: int) -> list[tuple[str, Style | None]]:
    """Take ``extra`` cells back: spaces from runs of two or more after ``after``, then the line's end."""
    keep = [True] * len(cells)
    index = after
    while extra and index < len(cells) - 1:
        if cells[index][0] == " " and cells[index + 1][0] == " ":
            keep[index] = False
            extra -= 1
        index += 1
    out = [cell for cell, kept in zip(cells, keep, strict=True) if kept]
    return out[: len(out) - extra] if extra else out  # nothing left to give: the end of the line goes


@dataclass
class ShareMode:
    """Share mode's state for one App: on or off, the redactor and its line filter."""

    redactor: Redactor
    on: bool = False

    def __post_init__(self) -> None:
        self.filter = ShareFilter(self.redactor)

    @classmethod
    def at(cls, path: Path | None, *, on: bool = False) -> ShareMode:
        """Share mode over the alias file at ``path`` (None: the default under the data directory)."""
        try:
            aliases = AliasMap(path or default_aliases_path())
        except OSError:
            aliases = AliasMap(None)
        redactor = Redactor(aliases)
        redactor.learn_this_host()
        return cls(redactor, on=on)

    def learn_sample(self, sample: Sample) -> None:
        """A hub listener: names reach the redactor before their Sample reaches any pane."""
        self.redactor.learn_sample(sample)

    def redact(self, text: str) -> str:
        """Text as share mode shows it (the same whether share mode is on or not)."""
        return self.redactor.redact(text)
