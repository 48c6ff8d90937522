"""Diagnosis tests: rules over stored Samples, and `warroom diagnose` against real faults (lab servers, namespaces)."""

from tests.lab.fixtures import lab, lab_session, netns
from tests.lab.server_fixtures import *  # noqa: F403 - re-export the server fixtures to pytest

__all__ = ["lab", "lab_session", "netns"]
