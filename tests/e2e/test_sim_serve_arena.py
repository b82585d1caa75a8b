"""The skeleton's arena on the simulator served over HTTP (issue 3, done-when): the shipped
``etc/sim-serve`` profile — configuration only — trades through the Hyperliquid adapter
and reads its market data from the simulator's ``/info``; every entry gets its stop and
target on the book, and the shared account adds up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from infrastructure import bootstrap
from infrastructure.simulator.serve import ServeOptions
from tests.support.sim_server import serving
from tests.support.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def served() -> Iterator[tuple[str, LocalAccount]]:
    master: LocalAccount = Account.create()
    options = ServeOptions(port=0, funds=[(master.address, Decimal(10_000))], history_days=14)
    with serving(options) as url:
        yield url, master


def test_the_arena_trades_the_served_simulator_with_stops_and_targets(
    tmp_path: Path, served: tuple[str, LocalAccount]
) -> None:
    url, master = served
    ws = Workspace(tmp_path / "ws")
    profile = ws.etc / "sim-serve"
    for name in ("exchange.yaml", "market.yaml"):
        ws.replace(f"sim-serve/{name}", "http://127.0.0.1:3001", url)
    env = {"NOF0_SIM_KEY": master.key.hex(), "NOF0_SIM_ADDRESS": master.address}
    config = bootstrap.load_config(profile / "nof0.yaml", data_dir=tmp_path / "data", env=env)
    engine = bootstrap.build_engine(config)

    async def run_for(seconds: float) -> None:
        await engine.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await engine.run(stop)

    asyncio.run(run_for(8.0))

    (sync,) = engine.arena.syncs
    exchange = sync.exchange
    traders = [engine.app.get_trader(t) for t in engine.arena.trader_ids]
    assert all(t.cycle_no >= 1 for t in traders)
    held = {coin: t for t in traders for coin in t.positions}
    assert held, "the baselines opened positions"
    state = asyncio.run(exchange.account_state())
    assert {c: p.qty for c, p in state.positions.items()} == {
        c: t.positions[c].qty for c, t in held.items()
    }
    orders = asyncio.run(exchange.open_orders())
    for coin, trader in held.items():
        kinds = sorted(o.trigger.kind.value for o in orders if o.coin == coin and o.trigger)
        assert kinds == ["sl", "tp"], f"{trader.config_id} {coin}: {kinds}"
        sized = {o.size for o in orders if o.coin == coin}
        assert sized == {abs(trader.positions[coin].qty)}
    equity, total, unallocated = sync.invariant(state)
    assert abs(equity - total - unallocated) < Decimal("0.01")
    # The key never reaches the event store or the views.
    secret = master.key.hex().removeprefix("0x")
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes().decode("utf-8", "replace"), path
