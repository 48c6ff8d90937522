"""Incident tests run against the lab's misbehaving loopback servers."""

from tests.lab.server_fixtures import *  # noqa: F403 - re-export the server fixtures to pytest
