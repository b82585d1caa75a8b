"""The backtest's own configuration: its traders, its market, its stores, nothing live."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infrastructure import bootstrap
from infrastructure.backtest import PROVIDER, BacktestError, BacktestPlan, backtest_config
from infrastructure.config.models import (
    HyperliquidExchangeConfig,
    ReplayMarketConfig,
    SimExchangeConfig,
)
from tests.support.arena import DEFAULT_CONFIG

LIVE = {
    "Postgres__DataSource": "postgresql://someone@db.example:5432/live",
    "Cache__0__Host": "cache.example:6379",
}


def plan(tmp_path: Path, **changes: object) -> BacktestPlan:
    values: dict[str, object] = {
        "start": datetime(2022, 1, 13, tzinfo=UTC),
        "end": datetime(2022, 1, 14, tzinfo=UTC),
        "candles": {"BTC": tmp_path / "btc.csv", "ETH": tmp_path / "eth.csv"},
        "out": tmp_path / "run",
    }
    values.update(changes)
    return BacktestPlan(**values)  # type: ignore[arg-type]


def config_without_pg(config: bootstrap.LoadedConfig, tmp_path: Path) -> bootstrap.LoadedConfig:
    main = config.main.model_copy(
        update={"Postgres": config.main.Postgres.model_copy(update={"DataSource": ""})}
    )
    return dataclasses.replace(config, main=main, data_dir=tmp_path / "plain")


def test_a_backtest_never_writes_to_the_live_stores(tmp_path: Path) -> None:
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "live", env=LIVE)
    assert config.main.Postgres.DataSource  # the live arena is on PostgreSQL and Redis
    run = backtest_config(config, plan(tmp_path))
    assert run.main.Postgres.DataSource == ""
    assert run.main.Cache == []
    assert bootstrap.redis_node(run) is None
    assert run.data_dir == tmp_path / "run"
    assert run.manager.monitoring.alert_webhook == ""
    # Its own store need not wait for the disk (it is rebuilt from its inputs); the live one does.
    assert config.durable_events
    assert not run.durable_events
    app = bootstrap.open_app(run)
    assert type(app.factory).__name__ == "UnsyncedSQLiteFactory"
    assert app.sole_writer  # no other process writes it: no look at the head per read
    assert not bootstrap.open_app(config_without_pg(config, tmp_path)).sole_writer
    with app.factory.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 0


def test_each_trader_gets_its_own_simulator_account_on_the_candles_coins(tmp_path: Path) -> None:
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "live", env={})
    run = backtest_config(config, plan(tmp_path, traders=["ema-cross", "btc-hold"]))
    assert [t.id for t in run.manager.traders] == ["ema-cross", "btc-hold"]
    venues = [t.exchange_provider for t in run.manager.traders]
    assert len(set(venues)) == 2
    for trader in run.manager.traders:
        assert isinstance(run.exchange.providers[trader.exchange_provider], SimExchangeConfig)
        assert trader.market_provider == PROVIDER
        assert set(trader.coins) <= {"BTC", "ETH"}
    market = run.market.providers[PROVIDER]
    assert isinstance(market, ReplayMarketConfig)
    assert market.source == "history"
    assert market.coins == ["BTC", "ETH"]


def test_a_trader_on_a_live_venue_is_refused(tmp_path: Path) -> None:
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "live", env={})
    live = config.manager.traders[0].model_copy(update={"exchange_provider": "hyperliquid"})
    exchange = config.exchange.model_copy(
        update={"providers": {**config.exchange.providers, "hyperliquid": object()}}
    )
    manager = config.manager.model_copy(update={"traders": [live]})
    config = dataclasses.replace(config, manager=manager, exchange=exchange)
    with pytest.raises(BacktestError, match="not the simulator"):
        backtest_config(config, plan(tmp_path))


def test_a_recorded_arenas_live_trader_re_decides_on_a_simulator_with_its_fees(
    tmp_path: Path,
) -> None:
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "live", env={})
    venue = HyperliquidExchangeConfig.model_validate(
        {
            "type": "hyperliquid",
            "private_key": "0x" + "11" * 32,
            "fee_taker_bps": 3.5,
            "timeout": 5,
            "retry": {"max_attempts": 1, "backoff": 0},
            "capabilities": ["market_orders"],
        }
    )
    live = config.manager.traders[0].model_copy(update={"exchange_provider": "hyperliquid"})
    exchange = config.exchange.model_copy(
        update={"providers": {**config.exchange.providers, "hyperliquid": venue}}
    )
    manager = config.manager.model_copy(update={"traders": [live]})
    config = dataclasses.replace(config, manager=manager, exchange=exchange)
    with pytest.raises(BacktestError, match="not the simulator"):
        backtest_config(config, plan(tmp_path))
    run = backtest_config(config, plan(tmp_path, simulate_venues=True))
    simulated = run.exchange.providers[run.manager.traders[0].exchange_provider]
    assert isinstance(simulated, SimExchangeConfig)
    assert simulated.fee_taker_bps == 3.5
    assert "11" * 32 not in repr(run.exchange.providers[run.manager.traders[0].exchange_provider])


def test_a_trader_without_any_of_the_candles_coins_is_named(tmp_path: Path) -> None:
    config = bootstrap.load_config(DEFAULT_CONFIG, data_dir=tmp_path / "live", env={})
    with pytest.raises(BacktestError, match="btc-hold trades BTC; the candles hold ETH"):
        backtest_config(config, plan(tmp_path, candles={"ETH": tmp_path / "eth.csv"}))
