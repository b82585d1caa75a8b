"""An arena exported from SQLite and imported into PostgreSQL gives the same views."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infrastructure import bootstrap
from tests.conftest import POSTGRES_DSN
from tests.support.archive import (
    SERVER_VARIABLES,
    cli,
    postgres_tables_dump,
    split,
    sqlite_tables_dump,
    views,
    write_archive,
)
from tests.support.arena import REPO, OfflineArena

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pg_config(tmp_path: Path) -> Iterator[Path]:
    """A copy of the shipped configuration on PostgreSQL, in a fresh schema."""
    try:
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    schema = f"it_{uuid.uuid4().hex[:10]}"
    etc = tmp_path / "etc"
    shutil.copytree(REPO / "etc", etc, ignore=shutil.ignore_patterns("paper-live"))
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    main = (etc / "nof0.yaml").read_text()
    main = main.replace('DataSource: "${Postgres__DataSource}"', f'DataSource: "{POSTGRES_DSN}"')
    main = main.replace("  MaxLifetime: 5m", f"  MaxLifetime: 5m\n  Schema: {schema}")
    (etc / "nof0.yaml").write_text(main)
    yield etc / "nof0.yaml"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_sqlite_to_postgres_gives_the_same_views(
    tmp_path: Path, pg_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "sqlite"
    arena = OfflineArena.open(source)
    arena.run_sync(minutes=60)
    archive = tmp_path / "arena.ndjson"
    assert cli("events", "export", "--data-dir", str(source), "--out", str(archive)) == 0
    header, events, _ = split(archive)
    target = tmp_path / "pg"
    config = bootstrap.load_config(pg_config, data_dir=target, env={})
    assert config.main.Postgres.DataSource == POSTGRES_DSN

    # A damaged archive writes nothing, not even into PostgreSQL.
    damaged = tmp_path / "damaged.ndjson"
    damaged.write_bytes(archive.read_bytes().replace(b'"3000.00"', b'"3000.01"', 1))
    capsys.readouterr()
    assert cli("events", "import", "--data-dir", str(target), str(damaged), config=pg_config) == 1
    assert "digest mismatch" in capsys.readouterr().err
    app = bootstrap.open_app(config)
    assert app.max_position() == 0

    assert cli("events", "import", "--data-dir", str(target), str(archive), config=pg_config) == 0
    out = capsys.readouterr().out
    assert f"imported {len(events)} of {len(events)} events" in out
    assert "numbered the events differently" not in out
    assert app.max_position() == len(events)

    assert cli("projections", "rebuild", "--data-dir", str(source)) == 0
    assert cli("projections", "rebuild", "--data-dir", str(target), config=pg_config) == 0
    assert views(bootstrap.load_config(pg_config, data_dir=target, env={})) == views(arena.config)
    # The SQL read tables, rebuilt in PostgreSQL, hold the rows the SQLite arena's do.
    assert not (target / "tables.sqlite3").exists()
    sqlite_rows = sqlite_tables_dump(source / "tables.sqlite3")
    assert sqlite_rows["trader_fills"]
    assert postgres_tables_dump(POSTGRES_DSN, config.main.Postgres.Schema) == sqlite_rows

    # A second, different archive is refused by the now non-empty PostgreSQL store.
    other = tmp_path / "other.ndjson"
    write_archive(other, header, [events[0].replace(b'"3000.00"', b'"1.00"'), *events[1:]])
    assert cli("events", "import", "--data-dir", str(target), str(other), config=pg_config) == 1
    assert "not a prefix" in capsys.readouterr().err
    assert app.max_position() == len(events)

    # And PostgreSQL exports the same event lines back.
    back = tmp_path / "back.ndjson"
    assert (
        cli("events", "export", "--data-dir", str(target), "--out", str(back), config=pg_config)
        == 0
    )
    back_header, back_events, _ = split(back)
    assert back_header["source"] == "postgresql"
    assert back_events == events


def test_the_engine_keeps_the_sql_tables_in_postgres(tmp_path: Path, pg_config: Path) -> None:
    arena = OfflineArena.open(tmp_path / "data", config_path=pg_config, env={})
    arena.run_sync(minutes=45)
    schema = arena.config.main.Postgres.Schema
    live = postgres_tables_dump(POSTGRES_DSN, schema)
    app = arena.engine.app
    fills = [
        n
        for n in app.recorder.select_notifications(start=None, limit=10**6)
        if n.topic == "nof0/Trader.OrderFilled"
    ]
    assert len(live["trader_fills"]) == len(fills) > 0
    assert {row[0] for row in live["traders"]} == {"ema-cross", "random-walk", "btc-hold"}
    with psycopg.connect(POSTGRES_DSN) as conn:
        position = conn.execute(
            f'SELECT position FROM "{schema}".nof0_projection WHERE name = %s', ("sql_tables_v1",)
        ).fetchone()
    assert position == (app.max_position(),)
    report = bootstrap.rebuild_projections(arena.config, app=app)
    assert report.tables == report.head
    assert postgres_tables_dump(POSTGRES_DSN, schema) == live
