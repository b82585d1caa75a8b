"""How configuration becomes venues and market providers (the composition root)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from application.shared_market import SharedSnapshots
from infrastructure import bootstrap
from infrastructure.hyperliquid.exchange import HyperliquidExchange
from infrastructure.hyperliquid.market import HyperliquidMarket
from infrastructure.hyperliquid.simulated import SimulatedHyperliquid
from infrastructure.market.failover import FailoverMarket
from tests.support.workspace import Workspace

HL_MARKET = {
    "type": "hyperliquid",
    "timeout": "1s",
    "http_timeout": "1s",
    "retry": {"max_attempts": 1},
    "capabilities": ["candles_3m", "candles_4h", "mids", "funding", "mark_price"],
}


def sim_serve_workspace(tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    ws = Workspace(tmp_path / "ws")
    key = Account.create()
    return ws, {"NOF0_SIM_KEY": key.key.hex(), "NOF0_SIM_ADDRESS": key.address}


def test_the_default_arena_trades_the_in_process_simulator_through_the_adapter(
    tmp_path: Path,
) -> None:
    config = bootstrap.load_config(Workspace(tmp_path / "ws").main, data_dir=tmp_path / "d", env={})
    engine = bootstrap.build_engine(config)
    (sync,) = engine.arena.syncs  # the three traders share one venue account
    assert isinstance(sync.exchange, SimulatedHyperliquid)
    assert isinstance(sync.exchange, HyperliquidExchange)
    assert sorted(sync.settings) == ["btc-hold", "ema-cross", "random-walk"]


def test_a_live_provider_with_standbys_fails_over_in_order(tmp_path: Path) -> None:
    ws, env = sim_serve_workspace(tmp_path)
    primary = {**HL_MARKET, "api_url": "http://127.0.0.1:9", "standby": ["backup"]}
    ws.set("sim-serve/market.yaml", ("providers", "sim_http"), primary)
    ws.set(
        "sim-serve/market.yaml",
        ("providers", "backup"),
        {**HL_MARKET, "api_url": "http://127.0.0.1:10"},
    )
    config = bootstrap.load_config(
        ws.etc / "sim-serve" / "nof0.yaml", data_dir=tmp_path / "d", env=env
    )
    engine = bootstrap.build_engine(config)
    markets = {id(s.runtime.market): s.runtime.market for s in engine.arena._states.values()}
    (shared,) = markets.values()  # one provider object shared by the traders
    assert isinstance(shared, SharedSnapshots)
    market = shared.inner
    assert isinstance(market, FailoverMarket)
    assert market.names == ("sim_http", "backup")
    assert all(isinstance(p, HyperliquidMarket) for p in market.providers)
    (sync,) = engine.arena.syncs
    assert type(sync.exchange) is HyperliquidExchange
    assert sync.exchange.account_id == env["NOF0_SIM_ADDRESS"].lower()


def test_a_standby_naming_an_unknown_provider_or_itself_is_a_config_problem(
    tmp_path: Path,
) -> None:
    ws, env = sim_serve_workspace(tmp_path)
    ws.set("sim-serve/market.yaml", ("providers", "sim_http", "standby"), ["sim_http", "nope"])
    with pytest.raises(bootstrap.ConfigError) as caught:
        bootstrap.load_config(ws.etc / "sim-serve" / "nof0.yaml", env=env)
    messages = [p.message for p in caught.value.problems]
    assert "a provider cannot stand by for itself" in messages
    assert "unknown market provider 'nope'" in messages


def test_replayed_and_live_market_data_are_not_mixed_in_one_arena(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.set("market.yaml", ("providers", "live"), {**HL_MARKET, "api_url": "http://127.0.0.1:9"})
    ws.set("manager.yaml", ("traders", 0, "market_provider"), "live")
    config = bootstrap.load_config(ws.main, data_dir=tmp_path / "d", env={})
    with pytest.raises(bootstrap.NotAvailable, match="mix replayed and live market data"):
        bootstrap.build_engine(config)
