"""Which failed transactions are run again (store/db.is_transient): the
ones PostgreSQL aborts to break a deadlock or a serialization conflict."""

from __future__ import annotations

import sqlalchemy as sa

from evroam.store.db import is_transient


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


def _dbapi(sqlstate: str | None) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError("SELECT 1", {}, _DriverError(sqlstate))


def test_a_deadlock_and_a_serialization_failure_are_run_again():
    assert is_transient(_dbapi("40P01"))
    assert is_transient(_dbapi("40001"))


def test_other_database_errors_are_not():
    assert not is_transient(_dbapi("23505"))  # unique violation: read again, not run again
    assert not is_transient(_dbapi(None))
    assert not is_transient(ValueError("40P01"))
