"""The archive contract (tests/support/archive_contract.py) over memory and SQLite."""

from tests.support.archive_backends import backend_fixture
from tests.support.archive_contract import *  # noqa: F403  (the contract's tests)

backend = backend_fixture("memory", "sqlite")
