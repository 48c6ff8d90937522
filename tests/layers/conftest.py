"""The layered probes are tested against the lab's misbehaving servers."""

from tests.lab.server_fixtures import *  # noqa: F403 - re-export the fixtures to pytest
