"""Share mode: no real address, host or user name on any tab or in a screen dump; the same alias for the
same name across tabs, restarts and processes; the key figures bigger; 80x24 still shows every target row.
"""

from __future__ import annotations

import html
import json
import multiprocessing
import re
import time
from pathlib import Path

from textual.widgets import Digits

from console.engine.aliases import AliasMap, Redactor
from console.settings.arguments import console_parser
from console.settings.hosts import HostConfig
from console.settings.settings import build_settings
from console.ui.app import AppConfig, WarroomApp, app_config, create_app
from probes.samples import Sample
from tests.conftest import fill_fixed_samples
from widgets.target_row import TargetRow
from widgets.targets_pane import TargetsPane

#: Distinctive names and addresses planted in the config and the store; none may reach a shared screen.
PLANTED_TARGETS = ["db-primary.corp-zeta.example:5432", "10.77.31.9:6379", "https://api.orders-zeta.example/health",
                   "[fd00:77::31]:8443"]
SECRETS = ["db-primary.corp-zeta.example", "10.77.31.9", "api.orders-zeta.example", "fd00:77::31",
           "bastion-zeta.prod.example", "10.77.40.2", "deploy-zorro", "alice-zeta", "incident-host-zeta",
           "mirror.cdn-zeta.example", "10.77.55.66", "cert.orders-zeta.example"]


def planted_app(aliases: Path, *, share: bool = True) -> WarroomApp:
    hosts = [HostConfig(name="bastion-zeta.prod.example", address="10.77.40.2", user="deploy-zorro")]
    config = AppConfig(targets=list(PLANTED_TARGETS), live=False, hostname="incident-host-zeta", remote_hosts=hosts,
                       share=share, aliases=aliases)
    app = create_app(config)
    fill_fixed_samples(app)
    now = time.time()
    for i in range(20):
        ts = now - 20 + i
        app.hub.publish(Sample("tcp", PLANTED_TARGETS[0], ts, {}, error="refused",
                               message="[Errno 111] Connect call failed ('10.77.31.9', 5432)"))
        app.hub.publish(Sample("tcp", PLANTED_TARGETS[1], ts, {"rtt_ms": 3.0 + i % 3}))
        app.hub.publish(Sample("tcp", PLANTED_TARGETS[1], ts, {"rtt_ms": 9.0}, host="bastion-zeta.prod.example"))
        app.hub.publish(Sample("tcp", PLANTED_TARGETS[3], ts, {}, error="timeout",
                               message="no SYN-ACK from fd00:77::31"))
    app.hub.publish(Sample("http", PLANTED_TARGETS[2], now, {}, error="connect-timeout",
                           message="redirected to https://mirror.cdn-zeta.example/x via 10.77.55.66"))
    app.hub.publish(Sample("tls", "api.orders-zeta.example:443", now, {"sni": "api.orders-zeta.example",
                                                                        "subject": "CN=cert.orders-zeta.example"},
                           error="cert-expired", message="certificate for cert.orders-zeta.example expired"))
    app.hub.publish(Sample("host_status", "", now, {"state": "connected", "detail": "deploy-zorro@10.77.40.2:22"},
                           host="bastion-zeta.prod.example"))
    app.hub.publish(Sample("system", "", now, {
        "cpu_percent": 12.0, "cpu_count": 2, "mem_percent": 40.0, "mem_used_mb": 1.0, "mem_total_mb": 2.0,
        "swap_percent": 0.0, "load1": 0.1, "load5": 0.1, "load15": 0.1, "open_fds": 1, "fd_max": 2, "procs": 3,
        "top": [{"pid": 9, "name": "java", "cpu": 9.0, "rss_mb": 1.0, "fds": 1, "user": "alice-zeta"}]}))
    return app


def screen_text(svg: str) -> str:
    """All the text of a Textual SVG screenshot, in drawing order (a name split over styles joins up)."""
    return html.unescape("".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))).replace("\xa0", " ")


async def test_no_planted_name_or_address_on_any_tab_or_dump(tmp_path: Path) -> None:
    app = planted_app(tmp_path / "aliases.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.2)
        dumps = []
        for tab in "1234567":
            await pilot.press(tab)
            await pilot.pause(0.3)
            dumps.append(app.export_screenshot())
        path = app.save_screenshot(path=str(tmp_path), filename="shared.svg")  # what the screenshot command writes
        dumps.append(Path(path).read_text(encoding="utf-8"))
        await pilot.press("1", "a")  # the add-target dialog, typing a new address as a responder would
        await pilot.press(*"10.77.99.12:80")
        await pilot.pause(0.2)
        dumps.append(app.export_screenshot())
    texts = [screen_text(d) for d in dumps]
    assert any("addr-" in t for t in texts) and any("host-" in t for t in texts), "aliases were not drawn"
    assert "user-" in texts[6], texts[6]  # the SSH login named in the Hosts tab's status line
    for tab, text in zip([*"1234567", "saved", "add"], texts, strict=True):
        for secret in [*SECRETS, "10.77.99.12"]:
            assert secret not in text, f"{secret} shown on {tab}: {text[:2000]}"
    aliases = json.loads((tmp_path / "aliases.json").read_text())
    assert set(aliases["addr"]) >= {"10.77.31.9", "10.77.40.2", "fd00:77::31"}  # each one drawn, each aliased
    assert (tmp_path / "aliases.json").stat().st_mode & 0o077 == 0, "the alias file holds the real names: 0600"


async def test_names_show_when_share_mode_is_off_and_S_hides_them(tmp_path: Path) -> None:
    app = planted_app(tmp_path / "aliases.json", share=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.2)
        before = screen_text(app.export_screenshot())
        assert "db-primary.corp-zeta.example" in before and "incident-host-zeta" in before
        await pilot.press("S")
        await pilot.pause(0.3)
        after = screen_text(app.export_screenshot())
        assert "SHARE MODE" in after
        assert "db-primary.corp-zeta.example" not in after and "incident-host-zeta" not in after
        # Names that only Samples carry (a redirect in a message, a certificate's name, a process's user)
        # were learned from the store when share mode came on: hidden on every tab too.
        for tab in "1234567":
            await pilot.press(tab)
            await pilot.pause(0.3)
            text = screen_text(app.export_screenshot())
            for secret in SECRETS:
                assert secret not in text, f"{secret} shown on {tab} after S: {text[:2000]}"
        await pilot.press("1")
        await pilot.press("S")
        await pilot.pause(0.3)
        assert "db-primary.corp-zeta.example" in screen_text(app.export_screenshot())


async def test_same_alias_on_every_tab_and_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "aliases.json"
    app = planted_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.2)
        alias = app.share.redact("10.77.31.9")
        overview = screen_text(app.export_screenshot())
        await pilot.press("3")
        await pilot.pause(0.3)
        findings = screen_text(app.export_screenshot())
    assert re.fullmatch(r"addr-\d+", alias)
    assert f"{alias}:6379" in overview  # the target row
    assert f"('{alias}'" in findings  # inside the original error text of the finding's evidence
    restarted = planted_app(path)
    assert restarted.share.redact("10.77.31.9") == alias
    assert restarted.share.redact("db-primary.corp-zeta.example") == app.share.redact("db-primary.corp-zeta.example")


def _assign_many(path: str, names: list[str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    aliases = AliasMap(Path(path))
    out.put({name: aliases.alias("addr", name) for name in names})


def test_two_processes_never_give_one_name_two_aliases(tmp_path: Path) -> None:
    """The console and a viewer assign at once: under the file lock each name gets one alias, each alias one name."""
    path = str(tmp_path / "aliases.json")
    names = [f"10.88.0.{i}" for i in range(60)]
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    workers = [multiprocessing.Process(target=_assign_many, args=(path, order, queue))
               for order in (names, list(reversed(names)), names[::2] + names[1::2])]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert results[0] == results[1] == results[2]
    assert len(set(results[0].values())) == len(names)


def test_redactor_finds_addresses_by_pattern_and_names_it_was_told(tmp_path: Path) -> None:
    redactor = Redactor(AliasMap(tmp_path / "a.json"))
    redactor.learn_target("db.corp-zeta.example:5432")
    text = ("db.corp-zeta.example:5432 [::1]:8080 at 12:30:45 via aa:bb:cc:dd:ee:ff from 10.1.2.3, "
            "TLSv1.3 in payload.py, v1.2.3 DB.CORP-ZETA.EXAMPLE")
    out = redactor.redact(text)
    assert "db.corp-zeta.example" not in out.lower() and "10.1.2.3" not in out and "::1" not in out
    assert "12:30:45" in out and "aa:bb:cc:dd:ee:ff" in out and "TLSv1.3" in out and "payload.py" in out
    assert out.count(redactor.redact("db.corp-zeta.example")) == 2  # case does not make a second name


async def test_share_mode_enlarges_state_and_rtt_and_80x24_shows_every_target(tmp_path: Path) -> None:
    app = planted_app(tmp_path / "aliases.json", share=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)
        rows = list(app.query(TargetRow))
        assert all(row.size.height == 2 for row in rows)
        assert not any(d.display and d.region.area for d in app.query(Digits))
        await pilot.press("S")
        await pilot.pause(0.5)
        row = next(r for r in app.query(TargetRow) if r.target == PLANTED_TARGETS[1])
        assert row.size.height == 3
        digits = row.query_one(Digits)
        assert digits.region.height == 3 and digits.value in {"3.0", "4.0", "5.0"}
        badge = row.query_one(".badge")
        assert "OK" in str(badge.render()) and badge.region.height == 3
        failing = next(r for r in app.query(TargetRow) if r.target == PLANTED_TARGETS[0])
        assert "FAIL" in str(failing.query_one(".badge").render())
        pane = app.query_one(TargetsPane)
        assert all(pane.content_region.contains_region(r.region) for r in app.query(TargetRow)), \
            "at 80x24 a target row is scrolled out of sight"


def test_share_flag_reaches_the_app() -> None:
    settings = build_settings(console_parser().parse_args(["--share", "127.0.0.1:9"]), use_config=False)
    assert app_config(settings).share is True
    assert app_config(build_settings(console_parser().parse_args([]), use_config=False)).share is False


async def test_an_incident_keeps_its_aliases_in_its_folder() -> None:
    from console.incident.folder import IncidentFolder

    folder = IncidentFolder.open("share-zeta")
    app = create_app(AppConfig(targets=["10.77.31.9:6379"], live=False, hostname="incident-host-zeta",
                               incident=folder, share=True))
    alias = app.share.redact("10.77.31.9")
    assert (folder.path / "aliases.json").exists()
    again = create_app(AppConfig(live=False, hostname="x", incident=IncidentFolder.open("share-zeta", create=False)))
    assert again.share.redact("10.77.31.9") == alias
    other = create_app(AppConfig(live=False, hostname="x", incident=IncidentFolder.open("other-zeta")))
    assert other.share.redactor.aliases.path == IncidentFolder.open("other-zeta").path / "aliases.json"
