"""Helpers for the event-archive and SQL-table tests: run the CLI, compare views and tables,
rewrite archives."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from infrastructure import bootstrap
from interfaces.cli import main
from projections.sql_tables import TABLES, Table
from tests.support.arena import DEFAULT_CONFIG

#: Environment variables that would point the shipped configuration at real servers.
SERVER_VARIABLES = ("Postgres__DataSource", "Cache__0__Host", "Cache__0__Pass", "NOF0_CONFIG")


def cli(*args: str, config: Path = DEFAULT_CONFIG) -> int:
    command, action, *rest = args
    return main([command, action, "--config", str(config), *rest])


def views(config: bootstrap.LoadedConfig) -> dict[str, bytes]:
    """The current namespace's view files, by name."""
    ns = bootstrap.namespaces(config)
    current = ns.current()
    assert current is not None
    return {p.name: p.read_bytes() for p in sorted(ns.directory(current).iterdir())}


def split(path: Path) -> tuple[dict[str, Any], list[bytes], dict[str, Any]]:
    lines = path.read_bytes().splitlines(keepends=True)
    return json.loads(lines[0]), lines[1:-1], json.loads(lines[-1])


def write_archive(path: Path, header: dict[str, Any], events: list[bytes]) -> None:
    """A well-formed archive (right count and digest) around ``events``."""
    digest = hashlib.sha256(b"".join(events)).hexdigest()
    header = {**header, "events": len(events)}
    trailer = {"end": "nof0-events", "events": len(events), "sha256": digest}
    path.write_bytes(
        json.dumps(header).encode()
        + b"\n"
        + b"".join(events)
        + json.dumps(trailer).encode()
        + b"\n"
    )


def _normal(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "numeric":
        return Decimal(str(value)).normalize()
    if kind == "timestamp":
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    if kind == "boolean":
        return bool(value)
    if kind == "json":
        return json.loads(value) if isinstance(value, str) else value
    return value


def _rows(cursor: Any, table: Table) -> list[tuple[Any, ...]]:
    cursor.execute(f"SELECT {', '.join(table.column_names)} FROM {table.name}")
    kinds = [kind for _, kind in table.columns]
    rows = [
        tuple(_normal(k, v) for k, v in zip(kinds, row, strict=True)) for row in cursor.fetchall()
    ]
    return sorted(rows, key=repr)


def sqlite_tables_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every SQL read table's rows, normalised (Decimal, ISO time, bool, parsed JSON)."""
    with closing(sqlite3.connect(path)) as conn:
        cursor = conn.cursor()
        return {table.name: _rows(cursor, table) for table in TABLES}


def postgres_tables_dump(dsn: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(f'SET search_path TO "{schema}"')
        return {table.name: _rows(cursor, table) for table in TABLES}
