"""Shared fixtures: Hypothesis profiles, paths, and the backends the application suite runs on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
#: ``../shared`` beside the checkout; ``NOF0_SHARED`` points elsewhere (a git worktree).
SHARED = Path(os.environ.get("NOF0_SHARED") or REPO.parent / "shared")

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

POSTGRES_DSN = os.environ.get("NOF0_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NOF0_TEST_REDIS", "127.0.0.1:6379")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (contracts, candles); tests that need it skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (contracts and candle data live there)")
    return SHARED


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    from infrastructure.eventstore import sqlite_env

    return sqlite_env(tmp_path / "events.sqlite3")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    import uuid

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    yield schema
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_env(postgres_schema: str) -> dict[str, str]:
    from infrastructure.eventstore import postgres_env

    return postgres_env(POSTGRES_DSN, schema=postgres_schema, pool_size=2)


@pytest.fixture(params=["popo", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Run a test once per event store backend (POPO, SQLite, PostgreSQL)."""
    if request.param == "popo":
        return {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"}
    if request.param == "sqlite":
        from infrastructure.eventstore import sqlite_env

        return sqlite_env(tmp_path / "events.sqlite3")
    env: dict[str, str] = request.getfixturevalue("postgres_env")
    return env
