"""The failure table of ARCHITECTURE.md §8 as tests through the running engine (#8 part 9).

Each fault is injected at the boundary where it happens for real (the event store's
database, the market data provider, the LLM vendor's HTTP endpoint, the file system under
the views, the Redis / PostgreSQL sockets); each test checks what the user sees (the event
with its typed reason, the alert, /api/status, /healthz, the projection status) and that
positions are unchanged unless an action was intended.

Rows and their tests:

1. event store write fails: ``test_event_store_write_failure_stops_the_cycle_before_any_order``
2. Redis (read side) down: ``test_redis_down_the_engine_trades_and_the_api_serves_json``
   (no server needed: the configured Redis is a loopback port nothing listens on)
3. PostgreSQL down: ``test_postgres_refusing_at_start_fails_closed_with_a_clear_error``
   (no server needed: a loopback port that refuses). PostgreSQL *back* (the arena running
   on it, restarted, trading on) is tests/integration/test_postgres_redis.py (marker
   postgres); PostgreSQL going down *mid-run* is not covered here yet.
4. exchange 5xx storm: tests/e2e/test_exchange_health.py (paper twins and back), not
   duplicated here
5. market data missing or stale: ``test_stale_market_data_skips_the_cycle_...`` and
   ``test_missing_market_data_skips_the_cycle_...``
6. model timeout, 429, 5xx, unparseable: ``test_a_failing_model_retries_falls_back_...``
7. disk full for a view file: ``test_a_full_disk_under_the_views_keeps_trading_...``
8. too many failed cycles: ``test_too_many_failed_cycles_pause_the_trader_and_alert``
   (tests/e2e/test_breakers_and_alerts.py covers the loss breakers, not the failure rate)
9. process killed at any point: tests/e2e/test_kill_restart.py (and the replay
   properties in tests/property/test_trader_replay.py), not duplicated here
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infrastructure import bootstrap
from tests.support.arena import DEFAULT_CONFIG, REPO, OfflineArena, api_client
from tests.support.failures import (
    LLM_TRADER,
    EventStoreRefuses,
    ViewDiskFull,
    closed_port,
    events_after,
    llm_model,
    llm_workspace,
    project_once,
    tick,
)
from tests.support.fake_llm import Delay, FakeLLMServer, Malformed, RecordedRequest, Reply, Status
from tests.support.fakes import venue_fills, venue_open_orders, venue_positions
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workspace import Workspace

# -- helpers -----------------------------------------------------------------------------


def positions(arena: OfflineArena) -> dict[str, dict[str, Decimal]]:
    """Every configured trader's positions (coin -> signed size), as the books hold them."""
    app = arena.engine.app
    return {
        t: {coin: p.qty for coin, p in app.get_trader(t).positions.items()}
        for t in arena.engine.arena.trader_ids
    }


def head(arena: OfflineArena) -> int:
    return arena.engine.app.max_position()


def trading_strategy(request: RecordedRequest) -> Reply:
    """A toy model reading its prompt: long BTC when flat, close when it holds it."""
    user = request.body["messages"][-1]["content"]
    price = float(re.search(r"### BTC\ncurrent_price = ([0-9.]+)", user).group(1))  # type: ignore[union-attr]
    if "'symbol': 'BTC'" in user:
        answer: dict[str, Any] = {"BTC": {"signal": "close", "justification": "take it"}}
    else:
        answer = {
            "BTC": {
                "signal": "buy_to_enter",
                "quantity": round(1400 / price, 5),  # within max_position_size_usd
                "leverage": 5,
                "profit_target": round(price * 1.04, 1),
                "stop_loss": round(price * 0.99, 1),
                "invalidation_condition": "4h close below the stop",
                "confidence": 0.8,
                "risk_usd": 15,
                "justification": "test entry",
            }
        }
    return Reply(text=json.dumps(answer), tokens_in=100, tokens_out=50)


# -- row 1: the event store refuses a write ------------------------------------------------


def test_event_store_write_failure_stops_the_cycle_before_any_order(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        ws = Workspace(tmp_path / "ws")
        ws.set("manager.yaml", ("monitoring", "alert_webhook"), receiver.url)
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        asyncio.run(_event_store_scenario(arena))
        (webhook,) = arena.engine.alerts.forward
        assert webhook.flush()  # type: ignore[attr-defined]
        errors = receiver.of_kind("cycle_error")
    assert errors, "the failed cycles were alerted"
    assert all("database or disk is full" in a["message"] for a in errors)
    assert {a["severity"] for a in errors} <= {"critical", "warning", "error"}


async def _event_store_scenario(arena: OfflineArena) -> None:
    engine = arena.engine
    await engine.start()
    await tick(arena, 30)
    (venue,) = {id(s.exchange): s.exchange for s in engine.arena.syncs}.values()
    fills_before = {f["tid"] for f in venue_fills(venue)}  # type: ignore[arg-type]
    resting_before = {o["oid"] for o in venue_open_orders(venue)}  # type: ignore[arg-type]
    books_before = positions(arena)
    on_venue_before = venue_positions(venue)  # type: ignore[arg-type]
    mark = head(arena)
    alerts_before = len(engine.alerts.sent)

    database = arena.config.data_dir / "events.sqlite3"
    with EventStoreRefuses(database, "nof0/Trader.OrderPlaced"):
        await tick(arena, 60)
        refused = [a for a in engine.alerts.sent[alerts_before:] if a[1] == "cycle_error"]
        assert refused, "in an hour some decision wanted an order, and its save was refused"
        assert events_after(arena, mark, "OrderPlaced") == []
        # The cycles asked their models (recorded before asking) and stopped at the save.
        assert events_after(arena, mark, "DecisionRequested")
        # Nothing reached the venue: every new fill is a stop or target that was already
        # resting there before the fault (the venue protecting a position, as intended).
        new_fills = [f for f in venue_fills(venue) if f["tid"] not in fills_before]  # type: ignore[arg-type]
        assert {f["oid"] for f in new_fills} <= resting_before
        closed_by_venue = {f["coin"] for f in new_fills}
        assert {o["oid"] for o in venue_open_orders(venue)} <= resting_before  # type: ignore[arg-type]
        on_venue = venue_positions(venue)  # type: ignore[arg-type]
        assert {c: q for c, q in on_venue.items() if c not in closed_by_venue} == {
            c: q for c, q in on_venue_before.items() if c not in closed_by_venue
        }
        books = positions(arena)
        for trader, held in books_before.items():
            assert {c: q for c, q in books[trader].items() if c not in closed_by_venue} == {
                c: q for c, q in held.items() if c not in closed_by_venue
            }, f"{trader}'s positions changed while its orders could not be recorded"

    # The store accepts writes again: the traders trade on.
    mark = head(arena)
    await tick(arena, 60)
    placed = events_after(arena, mark, "OrderPlaced")
    assert placed, "orders are recorded and sent again once the store accepts the writes"
    new_fills = [f for f in venue_fills(venue) if f["tid"] not in fills_before]  # type: ignore[arg-type]
    assert {f["cloid"] for f in new_fills} & {e.cloid for e in placed}


# -- row 5: market data missing or stale -----------------------------------------------------


def _market_workspace(tmp_path: Path, url: str) -> Workspace:
    return llm_workspace(tmp_path, {"fake-gpt": llm_model(url, 1)}, "fake-gpt", [])


def test_stale_market_data_skips_the_cycle_without_asking_the_model(tmp_path: Path) -> None:
    with FakeLLMServer(responder=trading_strategy) as server:
        ws = _market_workspace(tmp_path, server.url_openai)
        # Data has a one-minute resolution; decisions 45 s into a minute see 45 s old data.
        ws.set("market.yaml", ("providers", "replay", "max_staleness"), "30s")
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)

        async def scenario() -> tuple[int, int, dict[str, Any]]:
            await arena.engine.start()
            await tick(arena, 40)  # on the minute: fresh data, the model trades
            asked = server.request_count
            before = positions(arena)
            mark = head(arena)
            arena.clock.advance(45)  # from now on every decision is 45 s after its data
            await tick(arena, 30)
            assert server.request_count == asked, "no prompt was sent on stale data"
            return asked, mark, before

        asked, mark, before = asyncio.run(scenario())
    assert asked > 0
    assert events_after(arena, 0, "OrderPlaced"), "with fresh data the model traded"
    skipped = events_after(arena, mark, "CycleSkipped")
    assert {e.reason for e in skipped} == {"stale_data"}
    assert LLM_TRADER in {_owner(arena, e) for e in skipped}
    assert all("old (bound 30s)" in e.detail for e in skipped)
    for name in ("DecisionRequested", "LLMResponded", "LLMFailed", "OrderPlaced"):
        assert events_after(arena, mark, name) == [], f"{name} after the data went stale"
    # No trader acted; only the venue's stops and targets may close a position meanwhile
    # (they fire where a replayed minute's low or high reaches them, stale data or not).
    closed = events_after(arena, mark, "PositionClosed")
    assert {e.reason for e in closed} <= {"stop", "target"}
    by_venue = {(_owner(arena, e), e.coin) for e in closed}
    assert {
        trader: {c: q for c, q in held.items() if (trader, c) not in by_venue}
        for trader, held in positions(arena).items()
    } == {
        trader: {c: q for c, q in held.items() if (trader, c) not in by_venue}
        for trader, held in before.items()
    }
    arena.project()
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
    assert status[LLM_TRADER]["last_skip"]["reason"] == "stale_data"
    assert status[LLM_TRADER]["cycles_skipped"] >= 10


def test_missing_market_data_skips_the_cycle_without_asking_the_model(tmp_path: Path) -> None:
    with FakeLLMServer(responder=trading_strategy) as server:
        ws = _market_workspace(tmp_path, server.url_openai)
        ws.set("market.yaml", ("providers", "replay", "days"), 1)  # the tape ends after a day
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)

        async def scenario() -> tuple[int, dict[str, Any]]:
            await arena.engine.start()
            arena.clock.advance(24 * 3600 - 40 * 60)  # 40 minutes before the end of the data
            await tick(arena, 40)
            asked = server.request_count
            before = positions(arena)
            mark = head(arena)
            await tick(arena, 30)  # past the end: no data at all
            assert server.request_count == asked, "no prompt was sent without data"
            return mark, before

        mark, before = asyncio.run(scenario())
    assert server.request_count > 0
    skipped = events_after(arena, mark, "CycleSkipped")
    assert skipped
    assert {e.reason for e in skipped} == {"missing_data"}
    assert all("the replay tape ends at" in e.detail for e in skipped)
    for name in ("DecisionRequested", "LLMResponded", "LLMFailed", "OrderPlaced"):
        assert events_after(arena, mark, name) == [], f"{name} after the data ran out"
    assert positions(arena) == before
    arena.project()
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
    for trader in arena.engine.arena.trader_ids:
        assert status[trader]["last_skip"]["reason"] == "missing_data"


def _owner(arena: OfflineArena, event: Any) -> str:
    for trader in arena.engine.arena.trader_ids:
        if arena.engine.app.get_trader(trader).id == event.originator_id:
            return trader
    raise LookupError(event.originator_id)


# -- rows 6 and 8: the model fails; too many failures pause the trader ---------------------

PRIMARY_FAULTS = {
    "timeout": Delay(3.0),  # the client gives up after 1 s
    "rate_limited": Status(429, headers={"retry-after-ms": "1"}, message="slow down"),
    "server_error": Status(503, message="overloaded"),
    "unparseable": Reply(text="BTC looks strong, I would buy some."),
}
EXPECTED_REASON = {
    "timeout": "timeout",
    "rate_limited": "rate_limited",
    "server_error": "server_error",
    "unparseable": "no_json_found",
}


@pytest.mark.parametrize("fault", sorted(PRIMARY_FAULTS))
def test_a_failing_model_retries_falls_back_then_llm_failed(tmp_path: Path, fault: str) -> None:
    with (
        FakeLLMServer(responder=trading_strategy) as primary,
        FakeLLMServer(default=Malformed(b"<html>502 Bad Gateway</html>", "text/html")) as backup,
    ):
        models = {
            "primary": llm_model(primary.url_openai, 1),
            "backup": llm_model(backup.url_openai, 2),
        }
        ws = llm_workspace(tmp_path, models, "primary", ["backup"], timeout="1s", max_retries=1)
        ws.set("manager.yaml", ("manager", "pause_failure_pct"), 100)  # never pause here
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)

        async def scenario() -> tuple[int, int, dict[str, Any]]:
            await arena.engine.start()
            await tick(arena, 2)  # the healthy primary opens a BTC long (it closes it next)
            assert arena.engine.app.get_trader(LLM_TRADER).positions
            before = positions(arena)
            mark = head(arena)
            asked = primary.request_count
            primary.responder = None
            primary.default = PRIMARY_FAULTS[fault]
            await tick(arena, 9)  # three-minute interval: three cycles
            return mark, asked, before

        mark, asked, before = asyncio.run(scenario())
        to_primary, to_backup = primary.request_count - asked, backup.request_count
    mine = arena.engine.app.get_trader(LLM_TRADER).id
    events = [e for _, e in arena.engine.app.read_events(mark, 100_000) if e.originator_id == mine]
    failed = [e for e in events if type(e).__name__ == "LLMFailed"]
    attempts = [e for e in events if type(e).__name__ == "ModelAttemptFailed"]
    cycles = [e for e in events if type(e).__name__ == "DecisionRequested"]
    assert len(cycles) == 3
    assert len(failed) == len(cycles), "every cycle ended in LLMFailed"
    assert [a.model for a in attempts] == ["primary"] * len(cycles)
    assert {a.reason for a in attempts} == {EXPECTED_REASON[fault]}
    # The fallback was asked last and answered a proxy's error page, not the vendor's JSON:
    assert {(f.model, f.reason) for f in failed} == {("backup", "malformed_response")}
    # The SDK retried the primary (max_retries: 1) where the error is retryable.
    retried = fault != "unparseable"
    assert to_primary == len(cycles) * (2 if retried else 1)
    assert to_backup == len(cycles)  # a 200 is not retried
    names = [type(e).__name__ for e in events]
    assert "LLMResponded" not in names
    assert "OrderPlaced" not in names, "a failed answer never became an order (nor a hold)"
    assert positions(arena)[LLM_TRADER] == before[LLM_TRADER]
    assert not arena.engine.app.get_trader(LLM_TRADER).paused
    arena.project()
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
    assert status[LLM_TRADER]["llm_failures"] == len(failed)
    assert status[LLM_TRADER]["last_llm_failure"]["reason"] == "malformed_response"


def test_too_many_failed_cycles_pause_the_trader_and_alert(tmp_path: Path) -> None:
    with (
        WebhookReceiver() as receiver,
        FakeLLMServer(responder=trading_strategy) as server,
    ):
        ws = llm_workspace(tmp_path, {"fake-gpt": llm_model(server.url_openai, 1)}, "fake-gpt", [])
        ws.set("manager.yaml", ("monitoring", "alert_webhook"), receiver.url)
        ws.set("manager.yaml", ("manager", "pause_failure_window"), 10)  # judged after 5
        ws.set("manager.yaml", ("manager", "pause_failure_pct"), 10)
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)

        async def scenario() -> dict[str, Any]:
            await arena.engine.start()
            await tick(arena, 30)  # healthy: ten cycles decided
            assert not arena.engine.app.get_trader(LLM_TRADER).paused
            server.default = Status(500, message="internal error")
            server.responder = None
            before = positions(arena)
            await tick(arena, 60)
            return before

        before = asyncio.run(scenario())
        (webhook,) = arena.engine.alerts.forward
        assert webhook.flush()  # type: ignore[attr-defined]
        paused_alerts = receiver.of_kind("paused")
    trader = arena.engine.app.get_trader(LLM_TRADER)
    assert trader.paused
    events = list(arena.engine.app.trader_events(LLM_TRADER))
    pause = next(e for e in events if type(e).__name__ == "Paused")
    failures = [e for e in events if type(e).__name__ == "LLMFailed"]
    at_pause = events.index(pause)
    # Paused as soon as more than 10 % of the recent cycles failed: not on the first failure
    # (fewer than five cycles judged), and no cycle ran after it.
    assert 1 <= sum(1 for e in events[:at_pause] if type(e).__name__ == "LLMFailed") <= 2
    assert "DecisionRequested" not in [type(e).__name__ for e in events[at_pause:]]
    assert failures
    assert {f.reason for f in failures} == {"server_error"}
    # Pausing keeps its positions (stops and targets stay); the other traders trade on.
    assert positions(arena)[LLM_TRADER] == before[LLM_TRADER]
    assert [a["trader"] for a in paused_alerts] == [LLM_TRADER]
    assert paused_alerts[0]["severity"] == "critical"
    assert "fail" in paused_alerts[0]["message"]
    arena.project()
    with api_client(arena.config) as client:
        status = {t["model_id"]: t for t in client.get("/api/status").json()["traders"]}
    assert status[LLM_TRADER]["paused"] is True
    assert status[LLM_TRADER]["pause_reason"] == trader.pause_reason
    assert status["ema-cross"]["paused"] is False


# -- row 7: the disk under the views is full ---------------------------------------------------


def test_a_full_disk_under_the_views_keeps_trading_and_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    arena = OfflineArena.open(tmp_path / "data")
    views = {}

    async def scenario() -> int:
        await arena.engine.start()
        await tick(arena, 60)
        await project_once(arena)
        views.update({p.name: p.read_bytes() for p in arena.views_dir().glob("*.json")})
        mark = head(arena)
        with ViewDiskFull(monkeypatch, arena.views_dir()) as full:
            await tick(arena, 60)
            await project_once(arena)
            assert full.refused, "the worker tried to write the views"
            (json_target,) = [t for t in arena.engine.worker.targets if t.label == "json"]
            assert "No space left on device" in json_target.error
            lagging = [
                row
                for row in bootstrap.projection_status(arena.config, app=arena.engine.app)
                if row.store.startswith("json")
            ]
            assert lagging
            assert all(row.lag for row in lagging), "the views are visibly behind the log"
            with api_client(arena.config) as client:
                served = client.get("/api/leaderboard").json()
        assert served["leaderboard"], "the API serves the previous views meanwhile"
        return mark

    mark = asyncio.run(scenario())
    assert "trades.json" in views
    # The previous files are intact, byte for byte, and no partial temp file is left behind.
    assert {p.name: p.read_bytes() for p in arena.views_dir().glob("*.json")} == views
    assert not list(arena.views_dir().glob(".*.tmp"))
    assert any("json views not updated" in r.getMessage() for r in caplog.records)
    # The engine traded on while the views could not be written.
    assert events_after(arena, mark, "DecisionRequested")
    assert events_after(arena, mark, "OrderPlaced")

    # Space again: the next pass catches up with everything that happened meanwhile.
    asyncio.run(project_once(arena))
    (json_target,) = [t for t in arena.engine.worker.targets if t.label == "json"]
    assert json_target.error == ""
    assert all(
        row.lag == 0
        for row in bootstrap.projection_status(arena.config, app=arena.engine.app)
        if row.store.startswith("json")
    )
    assert (arena.views_dir() / "trades.json").read_bytes() != views["trades.json"]


# -- row 2: Redis (the read side's cache) is down ------------------------------------------------


def test_redis_down_the_engine_trades_and_the_api_serves_json(tmp_path: Path) -> None:
    down = f"127.0.0.1:{closed_port()}"
    arena = OfflineArena.open(tmp_path / "data", env={"Cache__0__Host": down})
    assert [t.label for t in arena.engine.worker.targets] == ["json", "redis"]

    async def scenario() -> None:
        await arena.engine.start()
        await tick(arena, 60)
        await project_once(arena)

    asyncio.run(scenario())
    assert events_after(arena, 0, "OrderPlaced"), "the engine traded without Redis"
    (redis_target,) = [t for t in arena.engine.worker.targets if t.label == "redis"]
    assert "Connection" in redis_target.error
    (json_target,) = [t for t in arena.engine.worker.targets if t.label == "json"]
    assert json_target.error == ""
    with api_client(arena.config) as client:
        health = client.get("/healthz").json()
        board = client.get("/api/leaderboard")
        trades = client.get("/api/trades")
        health_after = client.get("/healthz").json()
    assert health["redis"].startswith("down")
    assert board.status_code == 200
    assert {row["id"] for row in board.json()["leaderboard"]} == set(arena.engine.arena.trader_ids)
    assert trades.status_code == 200
    body = trades.json()
    body.pop("serverTime")
    on_disk = json.loads((arena.views_dir() / "trades.json").read_bytes())
    on_disk.pop("_view", None)
    assert body["trades"] == on_disk["trades"]
    assert health_after["views"] == "ok (json)"


# -- row 3: PostgreSQL (the event store) down ----------------------------------------------------


def test_postgres_refusing_at_start_fails_closed_with_a_clear_error(tmp_path: Path) -> None:
    port = closed_port()
    refused = f"postgresql://postgres@127.0.0.1:{port}/test"
    data = tmp_path / "data"
    config = bootstrap.load_config(
        DEFAULT_CONFIG, data_dir=data, env={"Postgres__DataSource": refused}
    )
    with pytest.raises(bootstrap.EventStoreError) as info:
        bootstrap.build_engine(config)
    assert f'"127.0.0.1", port {port} failed' in str(info.value)
    assert not (data / "events.sqlite3").exists(), "no silent fallback to SQLite"

    # What an operator sees from `nof0 run`: one clear line and a failing exit code.
    env = {**os.environ, "Postgres__DataSource": refused, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "run", "--port", "0", "--data-dir", str(data)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "cannot run: cannot prepare PostgreSQL schema" in output
    assert "Connection refused" in output
    assert "Traceback" not in output
    assert not (data / "events.sqlite3").exists()
    assert not (data / "views").exists(), "nothing ran"
