"""`warroom diagnose --json` against real faults: the right top finding, and how long it took.

Each test starts a real fault (a loopback server, or a network namespace with
a firewall rule or a lossy link), runs the command as a user would (a
subprocess), and checks the first finding it prints as the contract table
(/work/shared/DIAGNOSIS_CONTRACT.md) defines "right": the faulty target, the
layer, a warning or critical, the words in the title. ``--until-found`` stops
at the first warning or critical on top, so a wrong finding that came first
fails the test. The seconds until the right top finding (``first_top_s``) are
printed, and must be within the issue's goal of 10 s where the fault shows
within that time at the probes' rates (1 Hz; echoes 5 Hz).

The healthy controls run the full duration with ``--history``: no warning or
critical finding may appear at any moment, the first seconds included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from console.engine.demo_lab import DemoLab
from tests.diagnosis.scenarios import ChallengeShareServer, NamespaceHTTP, Outcome, diagnose, explain, is_right
from tests.lab.netns import Lab

pytestmark = pytest.mark.system

#: The issue's goal (the right top finding within 10 s) is measured by bench/diagnosis.py, not asserted
#: here: on a loaded machine a timed assertion flakes. Tests check the finding is right and print the time.
GOAL_S: float | None = None


def right_within(outcome: Outcome, target: str, layer: str, *words: str, goal: float | None = GOAL_S) -> float:
    """Assert the first printed finding is the right one; return (and print) when it first came on top."""
    assert is_right(outcome.top, target, layer, *words), explain(outcome)
    assert outcome.returncode == 1, explain(outcome)
    took = outcome.top["first_top_s"]  # type: ignore[index]
    print(f"{target}: right top finding ({layer}: {outcome.top['title']}) after {took} s")  # type: ignore[index]
    if goal is not None:
        assert took is not None and took <= goal, explain(outcome)
    return float(took)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_port() -> None:
    target = f"127.0.0.1:{_unused_port()}"
    right_within(diagnose(target, until_found=True), target, "tcp", "refused")


def test_syn_drop(lab: Lab) -> None:
    ns = lab.namespace()
    ns.tcp_listener(8443)
    ns.drop_syn(8443)
    target = f"{ns.addr}:8443"
    right_within(diagnose(target, until_found=True), target, "tcp", "syn")


def test_stall(stall_server) -> None:  # type: ignore[no-untyped-def]
    server = stall_server()
    target = f"http://127.0.0.1:{server.port}/report"
    right_within(diagnose(target, until_found=True), target, "http", "response")


def test_proxy_504(http_server) -> None:  # type: ignore[no-untyped-def]
    target = http_server().url("/status/504")
    outcome = diagnose(target, until_found=True)
    right_within(outcome, target, "http", "504")
    top = outcome.top
    assert top is not None and top["chain"][0].startswith("HTTP 504")
    assert any("TCP ok" in line for line in top["ruled_out"]), explain(outcome)


@pytest.fixture
def challenge_share() -> Iterator[type[ChallengeShareServer]]:
    servers: list[ChallengeShareServer] = []

    class Started(ChallengeShareServer):
        def __init__(self, every: int) -> None:
            super().__init__(every)
            servers.append(self)
            self.start()

    yield Started
    for server in servers:
        server.stop()


def test_waf_challenge_large_share_stays_listed(challenge_share: type[ChallengeShareServer]) -> None:
    """One request in three is sent to the challenge page: the finding is on top and stays until the end."""
    target = challenge_share(3).url()
    outcome = diagnose(target, duration=12.0)
    right_within(outcome, target, "http", "challenge")
    top = outcome.top
    assert top is not None and not top.get("cleared")
    assert any("redirected to /cdn-cgi/challenge-platform" in e or "redirected to http" in e
               for e in top["evidence"]), explain(outcome)
    assert "of" in top["title"] and "%" in top["title"]  # a count and a rate, not one sample
    assert not [r for r in outcome.records if r.get("cleared") and r["rule"] == top["rule"]], \
        f"the intermittent finding cleared during the run:\n{explain(outcome)}"


def test_waf_challenge_small_share(challenge_share: type[ChallengeShareServer]) -> None:
    """One request in ten: at one request a second the first challenge comes after ~10 s, so no time goal."""
    target = challenge_share(10).url()
    outcome = diagnose(target, duration=16.0, until_found=True)
    right_within(outcome, target, "http", "challenge", goal=None)


@pytest.mark.parametrize("loss", [0.1, 0.3], ids=["light", "heavy"])
def test_lossy_path(lab: Lab, loss: float) -> None:
    ns = lab.namespace()
    server = NamespaceHTTP(ns, 8080).start()
    ns.shape(delay_ms=2.0, jitter_ms=1.0, loss=loss)
    target = server.url("/ok")
    outcome = diagnose(target, until_found=True, duration=15.0)
    right_within(outcome, target, "path", "loss")


def test_healthy_controls_never_alarm(lab: Lab, http_server) -> None:  # type: ignore[no-untyped-def]
    """A clean loopback server and a namespace with a few ms of jitter: nothing to report, at any moment."""
    ns = lab.namespace()
    jittery = NamespaceHTTP(ns, 8080).start()
    ns.shape(delay_ms=4.0, jitter_ms=3.0)
    targets = (http_server().url("/ok"), jittery.url("/ok"), f"{ns.addr}:8080")
    outcome = diagnose(*targets, duration=12.0)
    about_targets = [r for r in outcome.alarms() if r["target"]]
    assert about_targets == [], explain(outcome)
    # Findings about this host (another process's leak on this shared machine) are listed, below; they alone
    # decide the exit status then.
    host_alarms = [r for r in outcome.alarms() if not r["target"] and not r.get("cleared")]
    assert outcome.returncode == (1 if host_alarms else 0), explain(outcome)


@pytest.fixture
def demo_lab() -> Iterator[DemoLab]:
    """The demo's misbehaving servers, on a loop of their own in this process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    lab = asyncio.run_coroutine_threadsafe(DemoLab.start(), loop).result(10)
    try:
        yield lab
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(lab.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_demo_backlog(demo_lab: DemoLab) -> None:
    """The demo's "backlog" target: a listener that never accepts; once its queue is full, SYNs are dropped."""
    target = next(t.target for t in demo_lab.targets if t.name == "backlog")
    right_within(diagnose(target, until_found=True), target, "tcp", "syn")
