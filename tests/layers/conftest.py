"""The layered probes are tested against the lab's misbehaving servers."""

import pytest

from tests.lab.server_fixtures import *  # noqa: F403 - re-export the fixtures to pytest


@pytest.fixture(autouse=True)
def _network_rule(loopback_only: None) -> None:
    """Every layer test runs with non-loopback traffic refused in-process."""
