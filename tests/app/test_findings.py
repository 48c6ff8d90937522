"""The Findings tab: the targets' findings first, then this host's, each with its target, host and since when."""

from __future__ import annotations

from tests.conftest import findings_app


async def test_findings_tab_lists_targets_above_this_host() -> None:
    from widgets.findings_pane import FindingsPane, FindingView

    app = findings_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        pane = app.query_one(FindingsPane)
        about = [f.target for f in pane.findings]
        assert about[-1] == "" and all(about[:-1]), about  # the unrelated leak comes last, under "this host"
        host = pane.findings[-1]
        assert host.severity == "critical" and "CLOSE_WAIT" in host.title
        text = pane.text()
        assert text.index("Targets (") < text.index("This host (1)")
        assert text.index("127.0.0.1:8003: connection refused") < text.index("86 connections stuck in CLOSE_WAIT")
        assert "127.0.0.1:8003 from local · since " in text and "window 60 s" in text
        assert "this host (local)" in text
        views = list(app.query(FindingView))
        assert [v.finding for v in views] == pane.findings  # drawn in the same order


async def test_long_lines_wrap_under_their_text_at_80_columns() -> None:
    """A wrapped evidence line continues in the text column, not under the label."""
    from widgets.findings_pane import FindingView

    app = findings_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        view = next(iter(app.query(FindingView)))
        label, text = view.query(".label").first(), view.query(".text").last()
        assert text.region.x > label.region.x + label.region.width - 1  # the text column starts after the label
        tall = [t for t in view.query(".text") if t.region.height > 1]
        assert tall, "no line wrapped at 80 columns: the test would prove nothing"
        assert all(t.region.x == tall[0].region.x for t in view.query(".text").results())
