"""Pytest fixtures for the namespace lab, importable by any test package.

tests/lab/conftest.py re-exports them for tests in tests/lab/; another test
package uses them with ``from tests.lab.fixtures import lab, netns, lab_session``
(pytest picks up fixtures imported into a test module or a conftest).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from tests.lab import netns as _netns
from tests.lab.netns import LAB_SUPERNET, Lab, LabError, Namespace, list_namespaces, run


@pytest.fixture(scope="session")
def lab_session() -> Iterator[None]:
    """Checks the tools, sweeps namespaces left by dead runs, and routes the lab block nowhere.

    The "unreachable" route for the whole lab block is a safety net: a probe
    aimed at a lab address whose namespace is gone fails on this machine
    instead of leaving it through the default route.
    """
    if os.geteuid() != 0:
        pytest.fail("the namespace lab needs root (CAP_NET_ADMIN for ip netns and iptables)", pytrace=False)
    missing = _netns.missing_tools()
    if missing:
        pytest.fail(f"lab tools missing: {', '.join(missing)}; run scripts/install-test-deps.sh", pytrace=False)
    _netns.sweep_stale()
    added = run(["ip", "route", "add", "unreachable", str(LAB_SUPERNET)], check=False).returncode == 0
    yield
    if added and not any(name.startswith(_netns.NAME_PREFIX) for name in list_namespaces()):
        run(["ip", "route", "del", "unreachable", str(LAB_SUPERNET)], check=False)


@pytest.fixture
def lab(lab_session: None) -> Iterator[Lab]:
    """A Lab whose namespaces, processes and rules are all removed when the test ends, pass or fail."""
    made = Lab()
    try:
        yield made
    finally:
        with contextlib.suppress(LabError):
            made.close()


@pytest.fixture
def netns(lab: Lab) -> Namespace:
    """One fresh namespace ("remote host") at ``netns.addr``, unshaped and unfirewalled."""
    return lab.namespace()


__all__ = ["lab", "lab_session", "netns"]
