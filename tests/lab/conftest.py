"""Lab fixtures for tests under tests/lab/; other test packages import them in their own conftest.

Namespaces (tests/lab/fixtures.py): ``lab_session``, ``lab``, ``netns``.
Misbehaving servers (tests/lab/server_fixtures.py, from the servers half of the
lab): re-exported when that module is present.
"""

from tests.lab.fixtures import lab, lab_session, netns

try:
    from tests.lab.server_fixtures import *  # noqa: F403 - re-export the server fixtures to pytest
except ModuleNotFoundError as exc:  # only while the servers half is not merged in
    if exc.name != "tests.lab.server_fixtures":
        raise

__all__ = ["lab", "lab_session", "netns"]
