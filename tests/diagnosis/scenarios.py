"""Helpers for the end-to-end diagnosis tests: run `warroom diagnose --json` and read what it printed.

The command runs as a subprocess (``python3 -m console.cli diagnose``), as a
user would run it; the faults are real servers on loopback or in network
namespaces that the tests make (tests/lab/netns.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.lab.netns import Namespace, _read_line
from tests.lab.servers import CHALLENGE_PATH

ROOT = Path(__file__).resolve().parents[2]
ALARMS = ("warning", "critical")


@dataclass
class Outcome:
    """What one `warroom diagnose --json` run printed, and how it ended."""

    records: list[dict[str, Any]]
    """Every JSON object printed: the current findings, ranked, then (with --history) the cleared ones."""
    returncode: int
    elapsed_s: float
    stderr: str = ""

    @property
    def current(self) -> list[dict[str, Any]]:
        return [r for r in self.records if not r.get("cleared")]

    @property
    def top(self) -> dict[str, Any] | None:
        return self.current[0] if self.current else None

    def alarms(self, target: str | None = None) -> list[dict[str, Any]]:
        """Every finding that was a warning or critical at any moment of the run (cleared ones included)."""
        return [r for r in self.records if (target is None or r["target"] == target)
                and (r["severity"] in ALARMS or r.get("worst_severity") in ALARMS)]


def diagnose(*targets: str, duration: float = 12.0, until_found: bool = False, history: bool = True,
             extra: tuple[str, ...] = ()) -> Outcome:
    argv = [sys.executable, "-m", "console.cli", "diagnose", *targets, "--json", "--duration", str(duration),
            *(["--until-found"] if until_found else []), *(["--history"] if history else []), *extra]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30, cwd=ROOT)
    elapsed = time.monotonic() - started
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return Outcome(records, proc.returncode, elapsed, proc.stderr)


def is_right(record: dict[str, Any] | None, target: str, layer: str, *words: str) -> bool:
    """The contract's "right top finding": that target, that layer, a warning or critical, the words in the title."""
    return (record is not None and record["target"] == target and record["layer"] == layer
            and record["severity"] in ALARMS and all(w.lower() in record["title"].lower() for w in words))


def explain(outcome: Outcome) -> str:
    """What the run printed, for an assertion message."""
    lines = [f"rc={outcome.returncode} in {outcome.elapsed_s:.1f} s"]
    for r in outcome.records:
        lines.append(f"  [{r['severity']}] {r['layer']} {r['target']!r}: {r['title']} "
                     f"(first seen {r.get('first_seen_s')} s, first top {r.get('first_top_s')} s"
                     f"{', cleared' if r.get('cleared') else ''})")
    if outcome.stderr.strip():
        lines.append("stderr: " + outcome.stderr.strip()[-2000:])
    return "\n".join(lines)


# ------------------------------------------------------------------------------- servers


class ChallengeShareHandler(BaseHTTPRequestHandler):
    """/api answers 200, except every ``server.every``-th request: a 302 to a CDN challenge page."""

    server: ChallengeShareServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith(CHALLENGE_PATH):
            self._send(200, b"<html>Checking your browser before accessing...</html>")
            return
        with self.server.lock:
            self.server.count += 1
            challenged = self.server.count % self.server.every == 0
        if challenged:
            self._send(302, b"", {"Location": f"{CHALLENGE_PATH}?__cf_chl_rt_tk=abc"})
        else:
            self._send(200, b'{"orders": []}\n')


class ChallengeShareServer(ThreadingHTTPServer):
    """A WAF in front of an API that sends one request in ``every`` to its challenge page."""

    daemon_threads = True

    def __init__(self, every: int, host: str = "127.0.0.1") -> None:
        self.every = every
        self.count = 0
        self.lock = threading.Lock()
        super().__init__((host, 0), ChallengeShareHandler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/api/orders") -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}{path}"

    def start(self) -> ChallengeShareServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@dataclass
class NamespaceHTTP:
    """A MisbehavingHTTPServer running inside a lab namespace, on ``port``."""

    ns: Namespace
    port: int
    procs: list[Any] = field(default_factory=list)

    def start(self) -> NamespaceHTTP:
        code = ("import sys, time\n"
                "from tests.lab.servers import MisbehavingHTTPServer\n"
                f"MisbehavingHTTPServer('0.0.0.0', {self.port}).start()\n"
                "print('ready', flush=True)\n"
                "while True: time.sleep(3600)\n")
        proc = self.ns.python(["-c", code], stdout=subprocess.PIPE)
        if _read_line(proc, 15.0) != "ready":
            self.ns.stop(proc)
            raise RuntimeError(f"HTTP server in {self.ns.name} did not start")
        self.procs.append(proc)
        return self

    def url(self, path: str = "/ok") -> str:
        return f"http://{self.ns.addr}:{self.port}{path}"
