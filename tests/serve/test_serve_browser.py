"""The console in a real browser: Debian's chromium, headless, driven by playwright (no browser download).

A responder runs the console in a terminal (tmux); `warroom serve` serves it; chromium opens the page. The
test checks what someone on the call would: the page loads, its websocket connects, the live dashboard is
there, a target the responder adds after the viewer connected shows up with its state and RTT, its real
address does not (viewers get aliases), and keys pressed in the browser change nothing on the console.
The screen is read from xterm.js's own buffer (the terminal in the page), and a screenshot is kept.

Network: the console probes only loopback servers this test starts; chromium resolves no name and every
request it makes is checked to go to the serve address.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from console.engine.live_feed import feeds_dir
from tests.serve.helpers import Tmux, console_command, listening_server, serving, wait_for

#: Debian's chromium (scripts/apt.d/browser.txt; scripts/test.sh installs it): a missing one fails the test.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.system
#: The flags a root, headless, offline chromium needs; a fresh --user-data-dir is added per run.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
#: Catches each xterm.js Terminal as the page builds it (textual.js keeps it in a closure), so the test can
#: read the terminal's buffer: what the browser's terminal holds, cell for cell.
TERMINAL_TRAP = """
(() => {
  const made = [];
  window.__warroomTerminals = made;
  Object.defineProperty(Object.prototype, '_core', {
    configurable: true,
    set(value) {
      Object.defineProperty(this, '_core', {value, writable: true, configurable: true, enumerable: true});
      made.push(this);
    },
  });
})();
"""
READ_TERMINAL = """
() => {
  const term = (window.__warroomTerminals || []).find(t => {
    try { return t.buffer && t.buffer.active && t.rows > 0; } catch (e) { return false; }
  });
  if (!term) return null;
  const buffer = term.buffer.active, lines = [];
  for (let y = 0; y < term.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    lines.push(line ? line.translateToString(true) : '');
  }
  return lines.join('\\n');
}
"""


async def test_viewer_in_chromium_follows_the_responder(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    env = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"], "TERM": "xterm-256color"}
    with listening_server() as first_port, listening_server() as added_port:
        first, added = f"127.0.0.1:{first_port}", f"127.0.0.1:{added_port}"
        responder = Tmux(console_command(first), env)
        try:
            wait_for(lambda: "● OK" in responder.screen(), 30, "the responder's console showing its target")
            wait_for(lambda: list(feeds_dir().glob("console-*.sock")), 10, "the console's live feed")
            with serving(env) as (port, _serve), tempfile.TemporaryDirectory() as profile:
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch_persistent_context(
                        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                        viewport={"width": 1280, "height": 800})
                    try:
                        await browser.add_init_script(TERMINAL_TRAP)
                        page = browser.pages[0] if browser.pages else await browser.new_page()
                        requests: list[str] = []
                        page.on("request", lambda request: requests.append(request.url))
                        sockets = []
                        page.on("websocket", lambda socket: sockets.append(socket))
                        response = await page.goto(f"http://127.0.0.1:{port}/")
                        assert response is not None and response.status == 200

                        async def terminal_shows(pattern: str, timeout: float) -> str:
                            deadline = asyncio.get_running_loop().time() + timeout
                            text = ""
                            while asyncio.get_running_loop().time() < deadline:
                                text = await page.evaluate(READ_TERMINAL) or ""
                                if re.search(pattern, text):
                                    return text
                                await asyncio.sleep(0.25)
                            raise AssertionError(f"{pattern!r} not in the browser's terminal:\n{text}")

                        before = await terminal_shows(r"VIEWER of .*read-only", 30)
                        assert sockets and re.fullmatch(rf"ws://127\.0\.0\.1:{port}/ws/.*", sockets[0].url)
                        assert not sockets[0].is_closed()
                        assert "Targets" in before and "System" in before  # the live dashboard
                        assert f":{added_port}" not in before

                        # The responder adds a target after the viewer connected.
                        responder.keys("a")
                        wait_for(lambda: "add a target" in responder.screen().lower(), 10, "the add-target dialog")
                        responder.keys(added, "Enter")
                        row = rf"● OK.*addr-\d+:{added_port}"
                        # Its RTT: "4.0ms p50 ..." on a two-line row, "last 4.0 ms" beside a tall row's chart.
                        after = await terminal_shows(row + r"[\s\S]*?(\d+(\.\d+)?ms p50|last \d+(\.\d+)? ms)", 20)
                        assert "127.0.0.1" not in after, "a real address reached the browser"
                        await page.screenshot(path=str(tmp_path / "viewer.png"))
                        assert (tmp_path / "viewer.png").stat().st_size > 10_000

                        # Keys pressed in the browser start nothing on the console.
                        await page.click(".xterm-screen")
                        await page.keyboard.press("a")
                        await page.keyboard.type("127.0.0.1:9\n")
                        await asyncio.sleep(1.5)
                        assert "127.0.0.1:9\n" not in responder.screen() and ":9 " not in await page.evaluate(
                            READ_TERMINAL)
                        assert all(url.startswith(f"http://127.0.0.1:{port}/") or
                                   url.startswith(f"ws://127.0.0.1:{port}/") for url in requests), requests
                    finally:
                        await browser.close()
            assert added in responder.screen()  # the responder's own console shows the real name
        finally:
            responder.close()
