"""The seed's SQL read tables (SQLite here): filled by the running engine, rebuildable,
one transaction per batch."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from collections import Counter
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infrastructure import bootstrap
from infrastructure.views.sql_tables import SqlTablesStore, SqlTablesWorker, sqlite_tables
from tests.support.archive import SERVER_VARIABLES, cli, sqlite_tables_dump
from tests.support.arena import OfflineArena


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> OfflineArena:
    arena = OfflineArena.open(tmp_path_factory.mktemp("sql") / "data")
    arena.run_sync(minutes=60)
    return arena


def topics(arena: OfflineArena) -> Counter[str]:
    app = arena.engine.app
    return Counter(n.topic for n in app.recorder.select_notifications(start=None, limit=10**6))


def test_the_running_engine_fills_the_tables(arena: OfflineArena) -> None:
    path = arena.config.data_dir / "tables.sqlite3"
    tables = sqlite_tables_dump(path)
    counts = topics(arena)
    assert {row[0] for row in tables["traders"]} == {"ema-cross", "random-walk", "btc-hold"}
    assert len(tables["trader_fills"]) == counts["nof0/Trader.OrderFilled"] > 0
    assert len(tables["trader_positions"]) == counts["nof0/Trader.PositionClosed"] > 0
    assert len(tables["trader_performance"]) == counts["nof0/Trader.PositionClosed"]
    assert len(tables["decision_cycles"]) == counts["nof0/Trader.DecisionRequested"] > 0
    assert len(tables["llm_conversations"]) == counts["nof0/Trader.DecisionRequested"]
    orders = counts["nof0/Trader.OrderPlaced"] + counts["nof0/Trader.ProtectionPlaced"]
    assert len(tables["trader_orders"]) == orders
    rejected = [r for r in tables["decision_validations"] if r[6] == "rejected"]
    assert len(rejected) == counts["nof0/Trader.RiskRejected"] > 0

    with closing(sqlite3.connect(path)) as conn:
        # What an analyst would ask: realised P&L per trader equals the positions' sum,
        # and the last performance snapshot carries it.
        pnl = dict(conn.execute("SELECT trader_id, SUM(pnl) FROM trader_positions GROUP BY 1"))
        last = dict(
            conn.execute(
                "SELECT trader_id, pnl FROM trader_performance p WHERE event_id = "
                "(SELECT MAX(event_id) FROM trader_performance q WHERE q.trader_id = p.trader_id)"
            )
        )
        assert pnl.keys() == last.keys()
        for trader, total in pnl.items():
            assert Decimal(str(total)).quantize(Decimal("0.000001")) == Decimal(
                str(last[trader])
            ).quantize(Decimal("0.000001"))
        # Every fill belongs to a known order, and a filled order's size is its fills' sum.
        orphans = conn.execute(
            "SELECT COUNT(*) FROM trader_fills f LEFT JOIN trader_orders o "
            "ON o.trader_id = f.trader_id AND o.order_id = f.order_id WHERE o.order_id IS NULL"
        ).fetchone()[0]
        assert orphans == 0
        mismatched = conn.execute(
            "SELECT COUNT(*) FROM trader_orders o WHERE o.status = 'filled' AND o.filled_size <> "
            "(SELECT SUM(fill_size) FROM trader_fills f WHERE f.trader_id = o.trader_id "
            "AND f.order_id = o.order_id)"
        ).fetchone()[0]
        assert mismatched == 0
        position = conn.execute("SELECT position FROM nof0_projection").fetchone()[0]
        assert position == arena.engine.app.max_position()


def test_a_rebuild_gives_the_same_tables(arena: OfflineArena, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(arena.config.data_dir, copy)
    before = sqlite_tables_dump(copy / "tables.sqlite3")
    (copy / "tables.sqlite3").unlink()
    for suffix in ("-wal", "-shm"):
        (copy / f"tables.sqlite3{suffix}").unlink(missing_ok=True)
    assert cli("projections", "rebuild", "--data-dir", str(copy)) == 0
    assert sqlite_tables_dump(copy / "tables.sqlite3") == before
    # And a rebuild over existing tables replaces them rather than adding to them.
    assert cli("projections", "rebuild", "--data-dir", str(copy)) == 0
    assert sqlite_tables_dump(copy / "tables.sqlite3") == before


def test_any_batch_size_gives_the_same_tables(arena: OfflineArena, tmp_path: Path) -> None:
    expected = sqlite_tables_dump(arena.config.data_dir / "tables.sqlite3")
    for batch in (1, 7, 1000):
        store = sqlite_tables(tmp_path / f"b{batch}.sqlite3")
        worker = SqlTablesWorker(arena.engine.app, store, batch_size=batch)
        while worker.pump(max_batches=3):
            pass
        assert sqlite_tables_dump(tmp_path / f"b{batch}.sqlite3") == expected, batch


def test_two_workers_on_one_set_of_tables_apply_every_batch_once(
    arena: OfflineArena, tmp_path: Path
) -> None:
    """Several engines on one database each run a worker over the same tables."""
    expected = sqlite_tables_dump(arena.config.data_dir / "tables.sqlite3")
    path = tmp_path / "shared.sqlite3"
    one, two = (
        SqlTablesWorker(arena.engine.app, sqlite_tables(path), batch_size=size) for size in (7, 11)
    )
    assert one.pump(max_batches=1) == 7
    two.pump(max_batches=0)  # two loads the tables (at 7), then one moves on
    assert one.pump(max_batches=2) == 14
    assert two.pump(max_batches=1) == 0  # superseded: it reloads instead of applying again
    assert two.pump(max_batches=1) == 11  # from where one got to
    while one.pump(max_batches=1) + two.pump(max_batches=1):
        pass
    assert sqlite_tables_dump(path) == expected


def test_a_failed_commit_writes_nothing_and_the_next_pump_converges(
    arena: OfflineArena, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = sqlite_tables_dump(arena.config.data_dir / "tables.sqlite3")
    path = tmp_path / "t.sqlite3"
    store = sqlite_tables(path)
    worker = SqlTablesWorker(arena.engine.app, store, batch_size=25)
    assert worker.pump(max_batches=2) == 50

    real_save = SqlTablesStore._save
    calls = {"n": 0}

    def failing_save(self: SqlTablesStore, cur: object, state: object) -> None:
        calls["n"] += 1
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(SqlTablesStore, "_save", failing_save)
    with pytest.raises(sqlite3.OperationalError):
        worker.pump()
    assert calls["n"] == 1
    assert store.position() == 50  # the batch's rows were rolled back with its position
    monkeypatch.setattr(SqlTablesStore, "_save", real_save)
    while worker.pump():
        pass
    assert sqlite_tables_dump(path) == expected


def test_projection_status_lists_the_tables(
    arena: OfflineArena, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = bootstrap.projection_status(arena.config, app=arena.engine.app)
    tables = [r for r in rows if r.view == "sql_tables_v1"]
    assert len(tables) == 1
    assert tables[0].lag == 0
    assert tables[0].store == "sqlite:tables.sqlite3"


def test_the_tables_can_be_turned_off(tmp_path: Path) -> None:
    config = bootstrap.load_config(
        Path(__file__).resolve().parents[3] / "etc" / "nof0.yaml", data_dir=tmp_path, env={}
    )
    assert bootstrap.sql_tables_store(config) is not None
    off = config.main.model_copy(
        update={"Projections": config.main.Projections.model_copy(update={"SqlTables": False})}
    )
    assert bootstrap.sql_tables_store(dataclasses.replace(config, main=off)) is None


def test_a_database_that_is_down_never_stops_the_worker(
    arena: OfflineArena, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    from contextlib import contextmanager

    from infrastructure.projection_worker import ProjectionWorker

    @contextmanager
    def down() -> Any:
        raise sqlite3.OperationalError("unable to open database file (injected)")
        yield  # pragma: no cover

    tables = SqlTablesWorker(arena.engine.app, SqlTablesStore("sqlite", down, label="sqlite:x"))
    worker = ProjectionWorker(
        source=arena.engine.app, projectors=list, targets=[], poll_s=0.01, tables=tables
    )

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(run())
    assert tables.error.startswith("OperationalError: unable to open database file")
    assert "SQL tables (sqlite:x) not updated" in caplog.text


def with_every_kind_the_tables_read(app: Any) -> None:
    """Add to a varied history what it does not produce: allocations, model switches,
    orders canceled and rejected, protections placed, confirmed and dropped, and events
    stored in an older shape (upcast on the way in)."""
    import json
    from datetime import timedelta

    from eventsourcing.persistence import StoredEvent

    from domain.trader import trader_id
    from domain.values import CloseReason
    from tests.property.test_projection_rebuild import T0

    now = T0 + timedelta(days=30)
    for n in range(3):
        trader = app.get_trader(f"t{n}")
        trader.allocate(Decimal(12_345), now)
        trader.switch_model("m2", "a test", now)
        for i, cloid in enumerate(list(trader.pending)):
            if i % 2:
                trader.record_order_canceled(cloid, reason="ioc", detail="x", at=now)
            else:
                trader.record_order_rejected(cloid, reason="venue", detail="y", at=now)
        for coin, position in list(trader.positions.items()):
            cloid = trader.protect(
                coin=coin,
                kind=CloseReason.STOP,
                size=position.size,
                trigger_price=Decimal(1),
                limit_price=Decimal(1),
                at=now,
            )
            trader.confirm_protection(cloid, 42, now)
            trader.drop_protection(cloid, reason="gone", detail="z", at=now)
        app.save_trader(trader)
    first = app.get_trader("t0")
    at = "2030-01-01T00:00:00Z"
    older = [
        ("nof0/Trader.OrderCanceled", {"cloid": "0xabc", "coin": "BTC", "reason": "ioc"}),
        ("nof0/Trader.OrderRejected", {"cloid": "0xdef", "coin": "BTC", "reason": "venue"}),
    ]
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=trader_id("t0"),
                originator_version=first.version + 1 + i,
                topic=topic,
                state=json.dumps({**state, "detail": "d", "timestamp": at}).encode(),
            )
            for i, (topic, state) in enumerate(older)
        ]
    )


def test_a_bulk_rebuild_writes_the_tables_the_events_write_one_by_one(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    from infrastructure.event_log import StoredLog
    from projections.sql_tables import SqlTablesProjector
    from tests.property.test_projection_rebuild import build_history
    from tests.unit.infrastructure.test_event_log import kinds_in, varied_steps

    app = build_history(3, varied_steps(400, seed=11), env=store_env)
    with_every_kind_the_tables_read(app)
    handled = {kind.__name__ for kind in SqlTablesProjector().handles()}
    assert handled <= kinds_in(app)  # the log has every kind the tables are made of
    head = app.max_position()
    one_by_one = SqlTablesWorker(app, sqlite_tables(tmp_path / "events.sqlite3"), batch_size=13)
    assert one_by_one.rebuild(head) == head
    for fetch in (1, 7, 5000):
        store = sqlite_tables(tmp_path / f"bulk-{fetch}.sqlite3")
        bulk = SqlTablesWorker(app, store)
        assert bulk.rebuild(head, StoredLog(app, fetch=fetch)) == head
        assert store.position() == head
        dump = sqlite_tables_dump(tmp_path / f"bulk-{fetch}.sqlite3")
        assert dump == sqlite_tables_dump(tmp_path / "events.sqlite3"), fetch
    assert all(dump.values())  # every table has rows: the history reaches each of them


def test_every_handler_of_the_tables_names_an_event_class() -> None:
    from domain.trader import Trader
    from projections.sql_tables import SqlTablesProjector

    handlers = {n[4:] for n in dir(SqlTablesProjector) if n.startswith("_on_")}
    assert handlers
    assert all(isinstance(getattr(Trader, name, None), type) for name in handlers)
    assert {k.__name__ for k in SqlTablesProjector().handles()} == handlers | {"Registered"}
