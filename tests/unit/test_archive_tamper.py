"""The database guards and tampering tests (tests/support/archive_tamper.py) over SQLite."""

from tests.support.archive_backends import backend_fixture
from tests.support.archive_tamper import *  # noqa: F403  (the tests)

backend = backend_fixture("sqlite")
