"""Each firewall rule the lab can apply shows up as the TCP failure kind a responder would expect."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from probes import tcp
from probes.samples import ERROR_REFUSED, ERROR_RESET, ERROR_TIMEOUT, ERROR_UNREACHABLE
from tests.lab.netns import Namespace

pytestmark = pytest.mark.system

PORT = 8080

RULES: dict[str, tuple[Callable[[Namespace], None], str]] = {
    "iptables drop SYN": (lambda ns: ns.drop_syn(PORT), ERROR_TIMEOUT),
    "nft drop SYN": (lambda ns: ns.drop_syn_nft(PORT), ERROR_TIMEOUT),
    "reject with tcp-reset": (lambda ns: ns.reject_rst(PORT), ERROR_REFUSED),
    "icmp host-unreachable": (lambda ns: ns.reject_unreachable(PORT), ERROR_UNREACHABLE),
    "drop all": (lambda ns: ns.drop_all(), ERROR_TIMEOUT),
    "RST right after handshake": (lambda ns: ns.reset_after_handshake(PORT), ERROR_RESET),
}


async def test_listener_answers_without_rules(netns: Namespace) -> None:
    """The baseline: with a listener and no rule, the connect works (so failures below are the rules')."""
    netns.tcp_listener(PORT)
    sample = await tcp.measure(f"{netns.addr}:{PORT}", timeout=1.0)
    assert sample.ok, sample
    assert 0 < sample.fields["rtt_ms"] < 100


@pytest.mark.parametrize("rule", list(RULES))
async def test_firewall_rule_gives_failure_kind(netns: Namespace, rule: str) -> None:
    apply, expected = RULES[rule]
    netns.tcp_listener(PORT)
    apply(netns)
    sample = await tcp.measure(f"{netns.addr}:{PORT}", timeout=0.5)
    assert sample.error == expected, f"{rule}: got {sample.error} ({sample.message})"
    assert sample.message  # the original error text is kept for the responder


async def test_rule_on_one_port_leaves_others_alone(netns: Namespace) -> None:
    netns.tcp_listener(PORT, PORT + 1)
    netns.reject_rst(PORT)
    blocked = await tcp.measure(f"{netns.addr}:{PORT}", timeout=0.5)
    open_ = await tcp.measure(f"{netns.addr}:{PORT + 1}", timeout=0.5)
    assert blocked.error == ERROR_REFUSED
    assert open_.ok, open_


async def test_no_listener_is_refused(netns: Namespace) -> None:
    sample = await tcp.measure(f"{netns.addr}:{PORT}", timeout=0.5)
    assert sample.error == ERROR_REFUSED


async def test_server_that_accepts_then_aborts_is_reset(netns: Namespace) -> None:
    """A reset a few ms after the handshake is caught by the probe's grace period, with the connect time kept."""
    netns.tcp_listener(PORT, abort_after_ms=5)
    sample = await tcp.measure(f"{netns.addr}:{PORT}", timeout=1.0)
    assert sample.error == ERROR_RESET, sample
    assert "after connect" in (sample.message or "")
    assert isinstance(sample.fields.get("connect_ms"), float)


async def test_grace_zero_does_not_wait_for_a_reset(netns: Namespace) -> None:
    """With the grace period off the same server looks healthy: the option really controls the check."""
    netns.tcp_listener(PORT, abort_after_ms=5)
    sample = await tcp.measure(f"{netns.addr}:{PORT}", timeout=1.0, reset_grace_ms=0)
    assert sample.ok, sample
