"""SVG snapshots of the console over fixed data (no clock, no live probes), 80x24 and 120x40.

Update after an intended change with: python3 -m pytest tests/snapshot --snapshot-update
"""

from __future__ import annotations

from tests.conftest import fixed_app


def test_overview_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=_settle)


def test_overview_120x40(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fixed_app(), terminal_size=(120, 40), run_before=_settle)


def test_help_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def open_help(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(fixed_app(), terminal_size=(80, 24), run_before=open_help)


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(1.2)  # one refresh of every pane's timer


def test_findings_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """The Findings tab: targets first, then this host; labels in a column, wrapped lines keep their indent."""
    from tests.conftest import findings_app

    async def findings(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("3")
        await _settle(pilot)

    assert snap_compare(findings_app(), terminal_size=(80, 24), run_before=findings)
