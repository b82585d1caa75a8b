"""Operator controls through the running engine: flatten over authenticated HTTP, pause and
the kill switch from the command line's commands, all audited in ``/api/status``.

Issue 8's first acceptance: with the arena running, ``POST /api/control/traders/ID/flatten``
with the bearer token closes that trader's positions and cancels its stops and targets on the
simulator; without the token it is refused and nothing changes; ``/api/status`` shows who
flattened it and why.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from infrastructure import bootstrap
from interfaces.http.app import create_app
from interfaces.http.control import ControlAccess
from tests.support.arena import OfflineArena
from tests.support.workspace import Workspace

TOKEN = "ops-token-0123456789abcdef"


def arena_with_token(root: Path) -> OfflineArena:
    ws = Workspace(root / "arena")
    ws.set("nof0.yaml", ("Control",), {"Tokens": [{"Id": "ops", "Env": "TEST_CONTROL_TOKEN"}]})
    return OfflineArena.open(root / "data", config_path=ws.main, env={"TEST_CONTROL_TOKEN": TOKEN})


def client_for(arena: OfflineArena) -> TestClient[Any]:
    engine = arena.engine
    access = ControlAccess(
        control=bootstrap.operator_control(
            arena.config, app=engine.app, clock=arena.clock, alerts=engine.alerts
        ),
        tokens=arena.config.control_tokens,
        kill_targets=lambda: bootstrap.control_traders(arena.config, engine.app),
    )
    app = create_app(lambda: bootstrap.build_readers(arena.config), metrics=False, control=access)
    return TestClient(app)


async def tick(arena: OfflineArena, minutes: int) -> None:
    for _ in range(minutes):
        arena.clock.advance(60)
        await arena.engine.arena.tick()
        await arena.engine.arena.drain()


def holder(arena: OfflineArena) -> str | None:
    for config_id in arena.engine.arena.trader_ids:
        trader = arena.engine.app.get_trader(config_id)
        if trader.positions and trader.protections and not trader.pending:
            return config_id
    return None


async def venue_cloids(arena: OfflineArena) -> set[str]:
    orders = []
    for sync in arena.engine.arena.syncs:
        orders += await sync.exchange.open_orders()
    return {o.cloid for o in orders if o.cloid}


def test_flatten_over_http_closes_positions_and_cancels_protections(tmp_path: Path) -> None:
    arena = arena_with_token(tmp_path)

    async def scenario() -> dict[str, Any]:
        await arena.engine.start()
        target = None
        for _ in range(48):  # up to 8 simulated hours until someone holds a protected position
            await tick(arena, 10)
            target = holder(arena)
            if target:
                break
        assert target, "a trader opened a position with stops and targets"
        trader = arena.engine.app.get_trader(target)
        version = trader.version
        guards = set(trader.protections)
        assert guards <= await venue_cloids(arena), "its protections are on the venue"
        coins = sorted(trader.positions)
        url = f"/api/control/traders/{target}/flatten"
        with client_for(arena) as client:
            refused = [
                client.post(url, json={"reason": "x"}),
                client.post(url, headers={"Authorization": "Bearer wrong-token-0000000000"}),
                client.post(url, headers={"Authorization": f"Basic {TOKEN}"}),
            ]
            now = arena.engine.app.get_trader(target)
            untouched = (now.paused, sorted(now.positions), now.version)
            answer = client.post(
                url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                json={"reason": "risk review"},
            )
        await tick(arena, 3)
        left = await venue_cloids(arena)
        settled = len(list(arena.engine.app.trader_events(target)))
        await tick(arena, 60)  # paused afterwards: further ticks open nothing for it
        return {
            "left_on_venue": left,
            "settled": settled,
            "target": target,
            "coins": coins,
            "guards": guards,
            "version": version,
            "refused": refused,
            "untouched": untouched,
            "answer": answer,
        }

    out = asyncio.run(scenario())
    target = out["target"]
    assert [r.status_code for r in out["refused"]] == [401, 403, 401]
    assert "bearer token is required" in out["refused"][0].json()["detail"]
    paused, positions, version = out["untouched"]
    assert not paused
    assert positions == out["coins"], "refused: nothing changed"
    assert version == out["version"], "refused: no event written"
    assert TOKEN not in str([r.text for r in out["refused"]])

    answer = out["answer"]
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["credential"] == "token:ops"
    assert body["results"][0]["flatten_pending"] is True

    left_on_venue = out["left_on_venue"]
    trader = arena.engine.app.get_trader(target)
    assert trader.paused
    assert not trader.positions, "every position closed"
    assert not trader.protections, "every stop and target canceled"
    assert not (out["guards"] & left_on_venue), "none of them is left on the venue"
    assert not trader.flatten_requested
    events = list(arena.engine.app.trader_events(target))[: out["settled"]]
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("OperatorActed") == 1
    assert kinds[-1] != "OrderPlaced" or events[-1].intent == "close"  # type: ignore[attr-defined]
    flattened = next(e for e in events if type(e).__name__ == "Flattened")
    assert sorted(flattened.closed) == out["coins"]  # type: ignore[attr-defined]
    closes = [e for e in events if type(e).__name__ == "PositionClosed"]
    assert {c.coin for c in closes[-len(out["coins"]) :]} == set(out["coins"])  # type: ignore[attr-defined]
    assert closes[-1].reason == "operator"  # type: ignore[attr-defined]

    later = list(arena.engine.app.trader_events(target))[out["settled"] :]
    assert not [e for e in later if type(e).__name__ == "OrderPlaced"]

    arena.project()
    with client_for(arena) as client:
        status = client.get("/api/status").json()
    row = next(t for t in status["traders"] if t["model_id"] == target)
    assert row["paused"] is True
    assert row["last_control"]["credential"] == "token:ops"
    assert row["last_control"]["reason"] == "risk review"
    assert row["last_control"]["action"] == "flatten"
    assert row["flatten_pending"] is False
    assert row["flattened_at"] is not None
    assert status["control_actions"][-1]["trader"] == target
    assert "control" in {kind for _, kind, _ in arena.engine.alerts.sent}


def test_control_routes_are_off_without_a_token_and_say_so(tmp_path: Path) -> None:
    arena = OfflineArena.open(tmp_path / "data")
    assert arena.config.control_tokens == {}
    with client_for(arena) as client:
        info = client.get("/api/control").json()
        answer = client.post(
            "/api/control/traders/ema-cross/pause", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        kill = client.post("/api/control/kill")
    assert info["enabled"] is False
    assert answer.status_code == 503
    assert "operator control is off" in answer.json()["detail"]
    assert kill.status_code == 503


def test_bad_control_requests_get_clear_errors(tmp_path: Path) -> None:
    arena = arena_with_token(tmp_path)
    asyncio.run(arena.engine.start())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with client_for(arena) as client:
        unknown_action = client.post("/api/control/traders/ema-cross/explode", headers=auth)
        unknown_trader = client.post("/api/control/traders/nobody/pause", headers=auth)
        bad_body = client.post(
            "/api/control/traders/ema-cross/pause", headers=auth, content=b"{not json"
        )
        long_reason = client.post(
            "/api/control/traders/ema-cross/pause", headers=auth, json={"reason": "x" * 501}
        )
    assert unknown_action.status_code == 400
    assert "unknown action" in unknown_action.json()["detail"]
    assert unknown_trader.status_code == 404
    assert bad_body.status_code == 400
    assert long_reason.status_code == 400
    assert not arena.engine.app.get_trader("ema-cross").paused, "nothing changed"


def test_the_kill_switch_pauses_everyone_and_resume_is_audited(tmp_path: Path) -> None:
    arena = arena_with_token(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    versions: dict[str, int] = {}

    async def scenario() -> tuple[Any, Any]:
        await arena.engine.start()
        with client_for(arena) as client:
            killed = client.post(
                "/api/control/kill", headers=auth, json={"reason": "exchange outage"}
            )
            resumed = client.post(
                "/api/control/traders/ema-cross/resume", headers=auth, json={"reason": "all clear"}
            )
        for t in arena.engine.arena.trader_ids:
            versions[t] = arena.engine.app.get_trader(t).version
        await tick(arena, 30)
        return killed, resumed

    killed, resumed = asyncio.run(scenario())
    assert killed.status_code == 200
    assert {r["trader"] for r in killed.json()["results"]} == set(arena.engine.arena.trader_ids)
    assert resumed.json()["results"][0]["paused"] is False
    for config_id in arena.engine.arena.trader_ids:
        trader = arena.engine.app.get_trader(config_id)
        assert trader.paused is (config_id != "ema-cross")
        assert trader.last_control is not None
    for config_id in arena.engine.arena.trader_ids:
        if config_id == "ema-cross":
            continue
        new = list(arena.engine.app.trader_events(config_id))[versions[config_id] :]
        assert not [e for e in new if type(e).__name__ in ("OrderPlaced", "DecisionRequested")]


@pytest.mark.parametrize("flatten", [False, True])
def test_cli_controls_write_audited_events_a_running_engine_obeys(
    tmp_path: Path, flatten: bool
) -> None:
    arena = arena_with_token(tmp_path)

    async def scenario() -> list[Any]:
        await arena.engine.start()
        await tick(arena, 120)
        # Another process (the CLI) writes through its own application over the same store.
        results = bootstrap.kill_switch(arena.config, flatten=flatten, reason="drill")
        await tick(arena, 5)
        return results

    results = asyncio.run(scenario())
    assert {r.trader for r in results} == set(arena.engine.arena.trader_ids)
    for config_id in arena.engine.arena.trader_ids:
        trader = arena.engine.app.get_trader(config_id)
        assert trader.paused
        assert trader.last_control is not None
        assert trader.last_control["credential"].startswith("cli:")
        assert trader.last_control["action"] == ("kill_flatten" if flatten else "kill")
        assert not trader.flatten_requested
        if flatten:
            assert not trader.positions
            assert not trader.protections
