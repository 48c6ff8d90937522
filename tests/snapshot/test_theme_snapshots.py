"""Each theme over the same fixed data at 80x24 and 120x40 (the default dark theme is test_snapshots' overview).

Update after an intended change with: python3 -m pytest tests/snapshot --snapshot-update
"""

from __future__ import annotations

import pytest

from tests.conftest import fixed_app
from themes import DEFAULT_THEME, THEME_NAMES

OTHER_THEMES = [name for name in THEME_NAMES if name != DEFAULT_THEME]


@pytest.mark.parametrize("theme", OTHER_THEMES)
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_theme(snap_compare, theme: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def themed(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.theme = theme
        await pilot.pause(1.2)  # one refresh of every pane's timer

    assert snap_compare(fixed_app(), terminal_size=size, run_before=themed)
