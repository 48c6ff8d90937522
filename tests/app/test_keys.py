"""Press the keys a responder presses and check what changed on screen."""

from __future__ import annotations

from textual.widgets import Input, Label, Static

from console.ui.app import WarroomApp
from console.ui.screens import AddTargetScreen, HelpScreen
from themes import THEME_NAMES
from widgets.target_row import TargetRow
from widgets.targets_pane import TargetsPane


def row_text(row: TargetRow) -> str:
    return row.text


async def test_rows_show_stats_and_failure_kinds(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        rows = {row.target: row_text(row) for row in app.query(TargetRow)}
        assert "REFUSED" in rows["127.0.0.1:8003"] and "loss 100%" in rows["127.0.0.1:8003"]
        assert "TIMEOUT" in rows["127.0.0.1:8005"]
        assert "loss 0%" in rows["http://127.0.0.1:8002/orders"]
        assert "p50 130" in rows["http://127.0.0.1:8002/orders"]


async def test_help_lists_every_binding_and_closes(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one(Static).render())
        for binding in app.BINDINGS:
            if binding.action.startswith("replay_"):  # type: ignore[union-attr]
                assert binding.description not in text  # type: ignore[union-attr]  # only in a replay
            else:
                assert binding.description in text  # type: ignore[union-attr]
        assert "ctrl+p" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_t_cycles_through_every_theme(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        seen = [app.theme]
        for _ in THEME_NAMES:
            await pilot.press("t")
            seen.append(app.theme)
        assert set(seen) == set(THEME_NAMES)
        assert seen[-1] == seen[0]


async def test_p_freezes_the_panes_until_pressed_again(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        row = next(r for r in app.query(TargetRow) if r.target == "http://127.0.0.1:8001/health")
        before = row_text(row)
        await pilot.press("p")
        assert "PAUSED" in app.sub_title
        import time

        from probes.samples import Sample
        for _ in range(20):
            app.hub.publish(Sample("tcp", row.target, time.time(), {}, error="timeout", message="x"))
        await pilot.pause(1.2)
        assert row_text(row) == before  # frozen
        await pilot.press("p")
        await pilot.pause(1.2)
        assert "PAUSED" not in app.sub_title
        assert "TIMEOUT" in row_text(row)


async def test_a_adds_a_target_and_rejects_a_bad_one(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, AddTargetScreen)
        await pilot.press(*"host:99999", "enter")
        assert isinstance(app.screen, AddTargetScreen)  # still open, with the reason
        assert "outside 1-65535" in str(app.screen.query_one("#error", Label).render())
        app.screen.query_one(Input).value = ""
        await pilot.press(*"127.0.0.1:6379", "enter")
        assert not isinstance(app.screen, AddTargetScreen)
        assert "127.0.0.1:6379" in app.query_one(TargetsPane).targets


async def test_the_add_dialog_survives_any_text_and_shows_the_whole_reason(app: WarroomApp) -> None:
    """Texts Python's URL splitter rejects, markup-like brackets, a long target with a password in it."""
    cases = [("http://[::1/x", "not a URL"), ("[oops", "missing ']'"), ("http://[fe80::1/", "not a URL"),
             ("http://ops:Canary7pw@" + "h" * 120 + ":99999/", "port is not a number")]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        for text, reason in cases:
            app.screen.query_one(Input).value = text
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, AddTargetScreen)
            label = app.screen.query_one("#error", Label)
            shown = str(label.render())
            assert reason in shown and "Canary7pw" not in shown
            # Wrapped inside the dialog, not cut off at its edge: every character has a cell on screen.
            assert label.region.right <= app.screen.size.width
            assert label.size.width * label.size.height >= len(shown), (label.size, shown)


async def test_x_removes_the_focused_target(app: WarroomApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(TargetsPane)
        first = pane.targets[0]
        pane.query(TargetRow).first().focus()
        await pilot.press("down", "up")  # move away and back: keyboard-only navigation
        assert pane.focused_target() == first
        await pilot.press("x")
        await pilot.pause()
        assert first not in pane.targets
        assert first not in app.config.targets


async def test_q_quits() -> None:
    from tests.conftest import fixed_app

    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
    assert app.return_code == 0 or app.return_code is None
    assert not app.is_running


async def test_empty_console_says_how_to_get_data() -> None:
    from console.ui.app import AppConfig, create_app

    app = create_app(AppConfig(live=False, hostname="h"))
    async with app.run_test(size=(80, 24)):
        text = str(app.query_one(TargetsPane).query_one(".empty", Static).render())
        assert "run warroom HOST:PORT" in text and "press a" in text


async def test_findings_tab_names_the_unreachable_target_with_its_original_error(app: WarroomApp) -> None:
    from widgets.findings_pane import FindingsPane

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        pane = app.query_one(FindingsPane)
        titles = [f.title for f in pane.findings]
        assert any(t.startswith("127.0.0.1:8003: connection refused") for t in titles)
        text = pane.text()
        assert "Connect call failed ('127.0.0.1', 8003)" in text  # the original error, unedited
        assert "next:" in text and "why:" in text and "127.0.0.1:8003 from local" in text


async def test_a_fast_502_reads_as_failing_not_ok() -> None:
    import time

    from console.ui.app import AppConfig, create_app
    from probes.samples import Sample

    url = "http://127.0.0.1:8080/api"
    app = create_app(AppConfig(targets=[url], live=False, hostname="h"))
    for i in range(5):
        app.hub.publish(Sample("http", url, time.time() - 5 + i, {"status": 502, "total_ms": 3.0}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        text = row_text(app.query_one(TargetRow))
        assert "FAIL" in text and "502" in text and "OK" not in text.split()[0:2]


async def test_hidden_tabs_do_not_redraw_and_a_shown_tab_draws_at_once(app: WarroomApp) -> None:
    import time

    from probes.samples import Sample
    from widgets.system_pane import SystemPane
    from widgets.visibility import displayed

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        system = app.query_one(SystemPane)
        assert displayed(system)
        await pilot.press("3")  # findings: the overview is hidden now
        await pilot.pause(0.2)
        assert not displayed(system)
        shown_before = system._shown
        fields = dict(app.store.last(("local", "system", "")).fields)  # type: ignore[union-attr]
        fields["cpu_percent"] = 99.0
        app.hub.publish(Sample("system", "", time.time(), fields))
        await pilot.pause(1.5)
        assert system._shown == shown_before  # hidden: not redrawn
        await pilot.press("1")
        await pilot.pause(0.2)  # well under the 1 s timer: drawn because the tab was shown
        assert "99.0%" in system._shown
