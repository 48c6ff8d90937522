"""Lab fixtures for tests under tests/lab/ (other areas import them in their own conftest)."""

from tests.lab.server_fixtures import *  # noqa: F403 - re-export the fixtures to pytest
