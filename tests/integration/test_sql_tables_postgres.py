"""The SQL read tables on PostgreSQL with several engines' workers (issue 8 part 7)."""

from __future__ import annotations

import threading

import pytest

from infrastructure.views.sql_tables import SqlTablesStore, postgres_tables
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


def test_engines_starting_together_make_the_tables_once(postgres_schema: str) -> None:
    """Concurrent CREATE TABLE IF NOT EXISTS collide in the catalogue (a unique violation
    on pg_type) unless the DDL goes one at a time."""
    stores: list[SqlTablesStore] = [
        postgres_tables(POSTGRES_DSN, postgres_schema) for _ in range(6)
    ]
    gate = threading.Barrier(len(stores))
    failures: list[BaseException] = []

    def start(store: SqlTablesStore) -> None:
        gate.wait()
        try:
            assert store.load() is None
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert stores[0].position() is None
