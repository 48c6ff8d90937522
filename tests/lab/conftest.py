"""The namespace lab's fixtures for tests in tests/lab/ (defined in tests/lab/fixtures.py)."""

from tests.lab.fixtures import lab, lab_session, netns

__all__ = ["lab", "lab_session", "netns"]
