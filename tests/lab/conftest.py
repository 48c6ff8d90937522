"""Lab fixtures for tests under tests/lab/; other test packages import them in their own conftest.

Namespaces (tests/lab/fixtures.py): ``lab_session``, ``lab``, ``netns``.
Misbehaving servers (tests/lab/server_fixtures.py): HTTP, TLS and DNS.
"""

from tests.lab.fixtures import lab, lab_session, netns
from tests.lab.server_fixtures import *  # noqa: F403 - re-export the server fixtures to pytest

__all__ = ["lab", "lab_session", "netns"]
