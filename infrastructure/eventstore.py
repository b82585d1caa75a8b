"""Event store settings: SQLite under the data directory, or PostgreSQL when configured."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import psycopg

from application.trading import TradingApp

APP_PREFIX = TradingApp.name.upper()


class EventStoreError(Exception):
    pass


def _prefixed(values: dict[str, str]) -> dict[str, str]:
    # Prefixed keys win over anything unprefixed in the process environment (stack.md §2.2).
    return {f"{APP_PREFIX}_{k}": v for k, v in values.items()}


def sqlite_env(path: Path) -> dict[str, str]:
    return _prefixed(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "10",
            "AGGREGATE_CACHE_MAXSIZE": "200",
        }
    )


def postgres_env(data_source: str, *, schema: str, pool_size: int) -> dict[str, str]:
    url = urlparse(data_source)
    if url.scheme not in ("postgres", "postgresql") or not url.hostname:
        raise EventStoreError("Postgres.DataSource must look like postgresql://user@host:5432/db")
    dbname = url.path.lstrip("/")
    if not dbname:
        raise EventStoreError("Postgres.DataSource names no database")
    return _prefixed(
        {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": url.hostname,
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "5",
            "AGGREGATE_CACHE_MAXSIZE": "200",
        }
    )


def ensure_schema(data_source: str, schema: str) -> None:
    """The library creates tables, not schemas (stack.md §2.3)."""
    try:
        with psycopg.connect(data_source, connect_timeout=10, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except psycopg.Error as exc:
        raise EventStoreError(f"cannot prepare PostgreSQL schema {schema!r}: {exc}") from exc


def open_trading_app(env: dict[str, str]) -> TradingApp:
    return TradingApp(env=env)
