"""The arena on PostgreSQL (events) and Redis (views), by configuration only."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from infrastructure import bootstrap
from infrastructure.views.readers import ViewReaders
from infrastructure.views.redis_store import RedisKeys, RedisViewStore
from projections.engine import ViewOutput
from tests.conftest import POSTGRES_DSN, REDIS_URL
from tests.support.arena import REPO, ROUTES, OfflineArena, api_client

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(f"redis://{REDIS_URL}/0")
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def arena_config(tmp_path: Path, redis_client: redis.Redis) -> Iterator[Path]:
    """A copy of the shipped configuration with a unique name and PostgreSQL schema."""
    name = f"it_{uuid.uuid4().hex[:10]}"
    etc = tmp_path / "etc"
    shutil.copytree(REPO / "etc", etc, ignore=shutil.ignore_patterns("paper-live"))
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    main = (etc / "nof0.yaml").read_text()
    main = main.replace("Name: nof0", f"Name: {name}")
    main = main.replace("  MaxLifetime: 5m", f"  MaxLifetime: 5m\n  Schema: {name}")
    (etc / "nof0.yaml").write_text(main)
    yield etc / "nof0.yaml"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    for key in redis_client.scan_iter(match=f"nof0:{name}:*"):
        redis_client.delete(key)


ENV = {"Postgres__DataSource": POSTGRES_DSN, "Cache__0__Host": REDIS_URL}


def responses(config: bootstrap.LoadedConfig) -> dict[str, Any]:
    with api_client(config) as client:
        result = {}
        for route in ROUTES:
            response = client.get(route)
            assert response.status_code == 200, (route, response.text)
            body = response.json()
            body.pop("serverTime")
            result[route.removeprefix("/api/")] = body
        return result


def test_the_arena_runs_on_postgres_and_serves_from_redis(
    arena_config: Path, tmp_path: Path, redis_client: redis.Redis
) -> None:
    data = tmp_path / "data"
    arena = OfflineArena.open(data, config_path=arena_config, env=ENV)
    assert arena.config.main.Postgres.DataSource == POSTGRES_DSN
    assert "PostgreSQL" in " ".join(bootstrap.describe(arena.config))
    arena.run_sync(minutes=90)
    assert not (data / "events.sqlite3").exists()  # the events are in PostgreSQL

    first = responses(arena.config)
    board = first["leaderboard"]["leaderboard"]
    assert {e["id"] for e in board} == {"ema-cross", "random-walk", "btc-hold"}
    assert any(e["num_trades"] > 0 for e in board)

    # The documents in Redis are the JSON files' bytes, and the API read them from Redis.
    keys = RedisKeys(f"nof0:{arena.config.main.Name}")
    namespace = redis_client.get(keys.pointer)
    assert namespace is not None
    for filename in ("trades.json", "leaderboard.json", "account-totals.json"):
        from_redis = redis_client.get(keys.document(namespace.decode(), filename))
        assert from_redis == (arena.views_dir() / filename).read_bytes()

    async def read_once() -> tuple[bytes | None, str]:
        reader = bootstrap.build_readers(arena.config)
        try:
            return await reader.read("leaderboard.json"), reader.last_source
        finally:
            await reader.close()

    document, source = asyncio.run(read_once())
    assert document is not None
    assert source == "redis"
    equity = redis_client.get(keys.extra(namespace.decode(), "trader:ema-cross:equity"))
    assert equity is not None
    assert float(equity) > 0

    # Restart: the state is the event store (PostgreSQL); cycles and trades continue.
    trades_before = {t["id"] for t in first["trades"]["trades"]}
    invocations_before = {
        v["model_id"]: v["num_invocations"]
        for v in first["since-inception-values"]["sinceInceptionValues"]
    }
    again = OfflineArena.open(data, config_path=arena_config, env=ENV)
    again.clock.resume_at(arena.clock.now())
    again.run_sync(minutes=30)
    second = responses(again.config)
    trades_after = {t["id"] for t in second["trades"]["trades"]}
    assert trades_before <= trades_after
    for value in second["since-inception-values"]["sinceInceptionValues"]:
        if value["model_id"] in ("ema-cross", "random-walk"):
            assert value["num_invocations"] > invocations_before[value["model_id"]]

    # A rebuild into a new namespace gives the same views, in the files and in Redis.
    report = bootstrap.rebuild_projections(again.config)
    assert report.events == report.head > 0
    assert redis_client.get(keys.pointer) == report.namespace.encode()
    assert responses(again.config) == second


def test_a_redis_restart_with_no_data_is_repopulated(
    arena_config: Path, tmp_path: Path, redis_client: redis.Redis
) -> None:
    arena = OfflineArena.open(tmp_path / "data", config_path=arena_config, env=ENV)
    arena.run_sync(minutes=45)
    name = arena.config.main.Name
    for key in redis_client.scan_iter(match=f"nof0:{name}:*"):
        redis_client.delete(key)  # Redis came back empty (it keeps nothing on disk here)
    worker = arena.engine.worker
    for target in worker.targets:
        target.catchup = None  # the worker notices on its next failure or restart
    arena.project()
    keys = RedisKeys(f"nof0:{name}")
    namespace = redis_client.get(keys.pointer)
    assert namespace is not None
    assert (
        redis_client.get(keys.document(namespace.decode(), "trades.json"))
        == (arena.views_dir() / "trades.json").read_bytes()
    )


def test_a_redis_view_commit_is_one_transaction(redis_client: redis.Redis) -> None:
    keys = RedisKeys(f"nof0:it_{uuid.uuid4().hex[:8]}")
    store = RedisViewStore(redis_client, keys, "r1")
    try:
        store.write(
            ViewOutput("trades_v1", 42, {"trades.json": b'{"trades":[]}'}, {"market:prices": b"{}"})
        )
        assert store.read("trades.json") == b'{"trades":[]}'
        assert redis_client.get(keys.position("r1", "trades_v1")) == b"42"
        assert redis_client.get(keys.extra("r1", "market:prices")) == b"{}"
    finally:
        for key in redis_client.scan_iter(match=keys.pattern("r1")):
            redis_client.delete(key)


def test_every_redis_view_write_and_flip_moves_the_api_marker(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    from infrastructure.views.jsonfile import Namespaces
    from infrastructure.views.redis_store import RedisNamespaces

    keys = RedisKeys(f"nof0:it_{uuid.uuid4().hex[:8]}")
    store = RedisViewStore(redis_client, keys, "r1")
    reader = ViewReaders(
        Namespaces(tmp_path / "views"), redis_url=f"redis://{REDIS_URL}/0", keys=keys
    )

    async def marker() -> object:
        return await reader.marker("trades.json")

    async def markers() -> list[object]:
        seen = [await marker()]  # nothing written yet: no counter, the reader cannot tell
        RedisNamespaces(redis_client, keys).flip("r1")
        seen.append(await marker())
        store.write(ViewOutput("trades_v1", 1, {"trades.json": b'{"trades":[]}'}, {}))
        seen.append(await marker())
        seen.append(await marker())  # nothing written in between: unchanged
        store.write(ViewOutput("trades_v1", 2, {"trades.json": b'{"trades":[]}'}, {}))
        seen.append(await marker())
        await reader.close()
        return seen

    try:
        seen = asyncio.run(markers())
    finally:
        redis_client.delete(keys.version, keys.pointer)
        for key in redis_client.scan_iter(match=keys.pattern("r1")):
            redis_client.delete(key)
    assert seen[0] is None
    assert seen[1] != seen[2]
    assert seen[2] == seen[3]
    assert seen[3] != seen[4]
    assert all(isinstance(m, tuple) and m[0] == "redis" for m in seen[1:])


def test_the_api_falls_back_to_json_when_redis_is_configured_but_empty(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    from infrastructure.views.jsonfile import Namespaces

    ns = Namespaces(tmp_path / "views")
    current = ns.ensure_current()
    (ns.directory(current) / "leaderboard.json").write_bytes(b'{"leaderboard": []}')

    async def read_once() -> tuple[bytes | None, str]:
        reader = ViewReaders(
            ns,
            redis_url=f"redis://{REDIS_URL}/0",
            keys=RedisKeys(f"nof0:none_{uuid.uuid4().hex}"),
        )
        try:
            return await reader.read("leaderboard.json"), reader.last_source
        finally:
            await reader.close()

    assert asyncio.run(read_once()) == (b'{"leaderboard": []}', "json")


def test_metrics_report_the_postgres_pool_redis_and_projection_lag(
    arena_config: Path, tmp_path: Path
) -> None:
    arena = OfflineArena.open(tmp_path / "data", config_path=arena_config, env=ENV)
    collector = arena.engine.collector
    assert collector is not None
    collector.start()
    arena.run_sync(minutes=15)
    collector.collect()
    registry = arena.engine.metrics.registry

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("nof0_event_store_up") == 1
    assert sample("nof0_event_store_head") == arena.engine.app.max_position()
    in_use, idle = (
        sample("nof0_event_store_pool_connections", state="in_use"),
        sample("nof0_event_store_pool_connections", state="idle"),
    )
    assert in_use is not None
    assert idle is not None
    assert in_use + idle >= 1
    assert (sample("nof0_event_store_pool_connections", state="max") or 0) >= in_use + idle
    assert sample("nof0_redis_up") == 1
    assert 0 < (sample("nof0_redis_rtt_seconds") or 0) < 5
    redis_lags = [
        m
        for metric in registry.collect()
        if metric.name == "nof0_projection_lag_events"
        for m in metric.samples
        if m.labels["store"].startswith("redis:")
    ]
    assert redis_lags
    assert all(m.value == 0 for m in redis_lags)
    assert (sample("nof0_decisions_total", trader="ema-cross") or 0) >= 1
