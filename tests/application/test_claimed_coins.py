"""The index of claimed coins (application/claims.py) answers what a scan of the stored
traders answers, whoever writes them: this engine, another engine on the same store (a
takeover), a save refused by a version conflict, a trader registered late, a new config."""

from __future__ import annotations

import gc
import tempfile
import weakref
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.claims import ClaimedCoins
from application.trading import TradingApp
from application.venue_state import holders
from domain.trader import Trader, make_cloid
from domain.values import CloseReason, Liquidity, OrderSide
from infrastructure.eventstore import sqlite_env
from tests.unit.domain.test_trader import ask, at, entry_order, register

IDS = ("a", "b", "c", "d")
COINS = ("BTC", "ETH", "SOL")


def scan(app: TradingApp, config_ids: list[str], excluding: str) -> dict[str, str]:
    """What claimed_by_others computed before the index: every other trader read."""
    return holders(app.find_traders(c for c in config_ids if c != excluding))


def apply(app: TradingApp, op: tuple[str, str, str, int], step: int) -> None:
    """One write through ``app`` (ours or another engine's), as the engine would make it."""
    kind, config_id, coin, n = op
    trader = app.find_trader(config_id)
    if kind == "register":
        if trader is None:
            app.save_trader(register(config_id))
        return
    if trader is None:
        return
    if kind == "place":
        if trader.paused:
            return  # a paused trader asks no question
        cycle = ask(trader, step)
        cloid = make_cloid(trader.id, cycle, f"{step}:{coin}")
        if cloid not in trader.pending:
            trader.place(cycle_id=cycle, cloid=cloid, order=entry_order(coin), at=at(step))
    elif kind == "fill" and trader.pending:
        cloid = sorted(trader.pending)[n % len(trader.pending)]
        pending = trader.pending[cloid]
        trader.record_fill(
            cloid,
            price=Decimal(100000),
            size=pending.size,
            fee=Decimal(1),
            liquidity=Liquidity.TAKER,
            at=at(step),
        )
    elif kind == "cancel" and trader.pending:
        cloid = sorted(trader.pending)[n % len(trader.pending)]
        trader.record_order_canceled(cloid, reason="ioc", detail="", at=at(step))
    elif kind == "close" and trader.positions:
        held = sorted(trader.positions)[n % len(trader.positions)]
        position = trader.positions[held]
        trader.record_fill(
            f"external-{step}",
            price=Decimal(100000),
            size=abs(position.qty),
            fee=Decimal(0),
            liquidity=Liquidity.TAKER,
            at=at(step),
            coin=held,
            side=OrderSide.SELL if position.qty > 0 else OrderSide.BUY,
            reason=CloseReason.EXTERNAL,
            fill_id=f"x{step}",
        )
    elif kind == "pause":
        if trader.paused:
            trader.resume("operator", at(step))
        else:
            trader.pause("operator", "", at(step))
    elif kind == "conflict":
        # A copy read before someone else's write, then saved: refused by the store.
        stale = app.repository.get(trader.id, version=max(1, trader.version - 1))
        assert isinstance(stale, Trader)
        stale.pause("stale", "", at(step))
    else:
        return
    try:
        app.save_trader(stale if kind == "conflict" else trader)
    except Exception:
        assert kind == "conflict"


operation = st.tuples(
    st.sampled_from(["register", "place", "fill", "cancel", "close", "pause", "conflict"]),
    st.sampled_from(IDS),
    st.sampled_from(COINS),
    st.integers(0, 3),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True),
    steps=st.lists(st.tuples(st.booleans(), operation), max_size=30),
    later=st.permutations(IDS),
    reconfigure_at=st.integers(0, 30),
)
def test_the_index_agrees_with_a_scan_of_the_stored_traders(
    first: list[str],
    steps: list[tuple[bool, tuple[str, str, str, int]]],
    later: list[str],
    reconfigure_at: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = sqlite_env(Path(tmp) / "events.sqlite3")
        ours, theirs = TradingApp(env=env), TradingApp(env=env)
        for config_id in first:
            ours.save_trader(register(config_id))
        config = list(IDS)
        index = ClaimedCoins(ours, config)
        for step, (by_them, op) in enumerate(steps, start=1):
            if step == reconfigure_at:
                config = list(later)  # a new configuration: another order of the traders
                index = ClaimedCoins(ours, config)
            apply(theirs if by_them else ours, op, step)
            for config_id in config:
                assert index.holders(excluding=config_id) == scan(ours, config, config_id)
            # The index's order is the scan's too (who is asked first about a coin).
            assert list(index.holders()) == list(holders(ours.find_traders(config)))


def test_a_write_by_this_app_updates_the_index_without_reading_the_store(
    sqlite_env: dict[str, str],
) -> None:
    app = TradingApp(env=sqlite_env)
    alpha, beta = register("alpha"), register("beta")
    app.save_trader(alpha)
    app.save_trader(beta)
    index = ClaimedCoins(app, ["alpha", "beta"])
    assert index.holders(excluding="beta") == {}
    assert index.rebuilds == 1
    cycle = ask(alpha, 1)
    alpha.place(cycle_id=cycle, cloid="0x" + "1" * 32, order=entry_order("ETH"), at=at(1))
    app.save_trader(alpha)
    assert index.holders(excluding="beta") == {"ETH": "alpha"}
    assert index.holders(excluding="alpha") == {}
    assert index.rebuilds == 1  # told by the save, not read again
    other = TradingApp(env=sqlite_env)  # another engine writes beta
    theirs = other.get_trader("beta")
    theirs.place(cycle_id=ask(theirs, 2), cloid="0x" + "2" * 32, order=entry_order("BTC"), at=at(2))
    other.save_trader(theirs)
    assert index.holders(excluding="alpha") == {"BTC": "beta"}
    assert index.rebuilds == 2  # the look at the log's head saw it


def test_a_dropped_index_is_not_kept_by_the_app(sqlite_env: dict[str, str]) -> None:
    app = TradingApp(env=sqlite_env)
    gc.disable()
    try:
        index = ClaimedCoins(app, ["alpha"])
        gone = weakref.ref(index)
        del index
        assert gone() is None
        app.save_trader(register("alpha"))  # no watcher left to tell
    finally:
        gc.enable()
