"""`warroom serve [--port P] [--bind ADDR] [--token T]`: the running console in a browser, read-only.

textual-serve starts a fresh app for every browser connection. Here that app
is a viewer (console/ui/viewer.py) of the one running console: it follows the
console's live feed, starts no probe, and binds no key that would. So everyone
on the call sees what the responder drives, and only the responder drives it.

It listens on 127.0.0.1 unless --bind says otherwise; any other address needs
--token (refused without one, exit 2) and prints a warning. The token travels
in the page's address (``/?token=T``) and in the websocket's path, and is
compared in constant time. Viewers get share mode's aliases unless
--no-redact. The page is textual-serve's, less its web-font link: nothing the
page loads comes from anywhere but this server.
"""

from __future__ import annotations

import hmac
import shlex
import sys
from pathlib import Path
from typing import Any

from console.settings.arguments import serve_parser
from console.settings.settings import ServeSettings, Settings, build_serve_settings

TEMPLATES = Path(__file__).resolve().parent / "serve_templates"
TITLE = "warroom (viewer)"
#: Seconds a stop waits for open browser connections before closing them.
SHUTDOWN_S = 2.0


def viewer_command(serve: ServeSettings, theme: str | None) -> str:
    """The shell command textual-serve runs for each browser: this warroom, as a viewer."""
    args = [sys.executable, "-m", "console.cli", "serve", "--viewer"]
    if serve.console:
        args += ["--console", serve.console]
    if not serve.redact:
        args.append("--no-redact")
    if theme:
        args += ["--theme", theme]
    return shlex.join(args)


def make_server(serve: ServeSettings, command: str) -> Any:
    """A textual-serve Server that checks the token and builds its links from the address the browser used."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import web
    from textual_serve.server import Server

    class TokenServer(Server):  # type: ignore[misc]
        def _allowed(self, given: str | None) -> bool:
            return serve.token is None or hmac.compare_digest((given or "").encode(), serve.token.encode())

        async def _make_app(self) -> web.Application:
            app = web.Application()
            aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)))
            app.add_routes([
                web.get("/", self.handle_index, name="index"),
                web.get("/ws/{token}", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
            ])
            app.on_startup.append(self.on_startup)
            return app

        async def on_startup(self, app: web.Application) -> None:
            return None  # the command prints its own lines (no banner, no colour codes)

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            if not self._allowed(request.query.get("token")):
                raise web.HTTPForbidden(text="warroom serve: this page needs ?token=T (ask the responder)\n")
            base = f"{request.scheme}://{request.host}"  # as the browser reached us, not the bind address
            ws_scheme = "wss" if request.scheme == "https" else "ws"
            token = serve.token or "-"
            context = {
                "font_size": max(8, min(32, _int(request.query.get("fontsize"), 16))),
                "app_websocket_url": f"{ws_scheme}://{request.host}/ws/{token}",
                "config": {"static": {"url": f"{base}/static/"}},
                "application": {"name": TITLE},
            }
            return aiohttp_jinja2.render_template("app_index.html", request, context)

        def serve(self, debug: bool = False) -> None:
            """As textual-serve's, but a stop (ctrl+c, SIGTERM) waits at most SHUTDOWN_S for open viewers."""
            import asyncio
            import signal

            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self.request_exit)
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                        print=lambda *args: None, shutdown_timeout=SHUTDOWN_S)

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            if not self._allowed(request.match_info.get("token") if serve.token else None):
                raise web.HTTPForbidden(text="bad token\n")
            return await super().handle_websocket(request)

    server = TokenServer(command, host=serve.bind, port=serve.port, title=TITLE)
    server.templates_path = TEMPLATES
    return server


def _int(text: str | None, default: int) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


def run_viewer(settings: Settings) -> int:
    """One browser's app: a read-only viewer of the running console."""
    assert settings.serve is not None
    from console.ui.app import AppConfig
    from console.ui.viewer import ViewerApp
    from themes import DEFAULT_THEME

    feed = Path(settings.serve.console) if settings.serve.console else None
    app = ViewerApp(AppConfig(theme=settings.theme or DEFAULT_THEME, hostname=""), feed=feed,
                    redact=settings.serve.redact)
    return int(app.run() or 0)


def run_server(settings: Settings) -> int:
    serve = settings.serve
    assert serve is not None
    try:
        import textual_serve  # noqa: F401
    except ImportError:
        print("warroom: warroom serve needs textual-serve: python3 -m pip install textual-serve", file=sys.stderr)
        return 2
    host = f"[{serve.bind}]" if ":" in serve.bind else serve.bind
    query = f"/?token={serve.token}" if serve.token else "/"
    if not serve.loopback:
        print(f"warroom: WARNING: serving on {serve.bind}: anyone who can reach this address and has the token can "
              "watch the incident" + ("" if serve.redact else ", with real addresses and names (--no-redact)"),
              file=sys.stderr)
    print(f"warroom: viewers open http://{host}:{serve.port}{query}  (read-only; "
          f"{'aliases for addresses and names' if serve.redact else 'real names shown'}; ctrl+c stops)",
          file=sys.stderr, flush=True)
    server = make_server(serve, viewer_command(serve, settings.theme))
    try:
        server.serve()
    except OSError as exc:
        print(f"warroom: cannot listen on {host}:{serve.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    settings = build_serve_settings(args)
    return run_viewer(settings) if args.viewer else run_server(settings)
