"""Projection properties (ARCHITECTURE.md §5):

* incremental projection, with any batch size and any restart points, equals a full rebuild;
* re-delivered events change nothing;
* a store that fails half-way through a commit, once restarted, still converges to the rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from application.trading import TradingApp
from domain.decision import DecisionItem, ItemError, ItemRejection, ParsedDecision
from domain.ledger import EntryContext, ExitPlan
from domain.risk import PlannedOrder, Rejection
from domain.trader import PausePolicy, PromptRecord, Trader, make_cloid
from domain.values import CloseReason, Liquidity, OrderIntent, OrderSide, Signal, SkipReason
from domain.venue_account import VenueAccount
from infrastructure.hyperliquid.assets import HYPERLIQUID_ASSETS
from projections.analytics import AnalyticsProjector
from projections.conversations import ConversationsProjector
from projections.engine import CatchUp, Projector, ViewOutput
from projections.market import MarketProjector
from projections.portfolio import PortfolioProjector
from projections.status import StatusProjector
from projections.trades import TradesProjector
from tests.support.fakes import T0

COINS = ("BTC", "ETH")
PRICES = {"BTC": Decimal(100_000), "ETH": Decimal(4_000)}


def all_projectors() -> list[Projector[Any]]:
    max_leverage = {c: r.max_leverage for c, r in HYPERLIQUID_ASSETS.items()}
    return [
        MarketProjector(),
        PortfolioProjector(max_leverage),
        TradesProjector(),
        AnalyticsProjector(),
        ConversationsProjector(per_trader=3),
        StatusProjector(),
    ]


class MemoryStore:
    """A view store in memory; ``fail_after`` makes the n-th file write raise (a crash)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fail_after: int | None = None
        self.writes = 0

    def read(self, filename: str) -> bytes | None:
        return self.files.get(filename)

    def write(self, output: ViewOutput) -> None:
        for filename, data in output.files.items():
            self.writes += 1
            if self.fail_after is not None and self.writes > self.fail_after:
                raise OSError("disk went away")
            self.files[filename] = data


class Redelivering:
    """An event source that re-sends the last ``overlap`` events of every batch."""

    def __init__(self, app: TradingApp, overlap: int) -> None:
        self.app = app
        self.overlap = overlap

    def max_position(self) -> int:
        return self.app.max_position()

    def read_events(self, after: int, limit: int) -> Sequence[tuple[int, Any]]:
        return self.app.read_events(max(0, after - self.overlap), limit)


# -- random histories -------------------------------------------------------------------------

KINDS = ["cycle"] * 6 + ["fill"] * 5 + ["funding", "skip", "pause", "venue"]
SIGNALS = ["buy_to_enter", "sell_to_enter", "buy_to_enter", "close", "close", "hold", "garbage"]
step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(1, 150),  # minutes since the previous step: crosses hourly markers
    st.sampled_from(COINS),
    st.sampled_from(SIGNALS),
    st.booleans(),
    st.integers(-300, 300),  # price wiggle in basis points
)


def build_history(
    traders: int,
    steps: list[tuple[str, int, str, str, bool, int]],
    env: dict[str, str] | None = None,
) -> TradingApp:
    """Drive real Trader aggregates with random commands; return the app holding the log
    (in memory unless ``env`` names a store)."""
    app = TradingApp(env=env or {"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    now = T0
    agents = []
    for n in range(traders):
        trader = Trader.register(
            config_id=f"t{n}",
            name=f"t{n}",
            model="m",
            allocation=Decimal(10_000),
            coins=list(COINS),
            at=now,
        )
        app.save_trader(trader)
        agents.append(trader)
    venue = VenueAccount.register(
        provider="sim", address="0x" + "ab" * 20, baseline_equity=Decimal(30_000), at=now
    )
    venue.track_transfers(now, now)
    app.save_venue_account(venue)
    for index, (kind, minutes, coin, signal, flag, wiggle) in enumerate(steps):
        trader = agents[index % traders]
        now += timedelta(minutes=minutes)
        price = PRICES[coin] * (1 + Decimal(wiggle) / 10_000)
        marks = {c: PRICES[c] * (1 + Decimal(wiggle) / 10_000) for c in COINS}
        if kind == "cycle" and not trader.paused:
            _cycle(trader, now, coin, signal, price, marks)
        elif kind == "fill":
            _fill_pending_or_close(trader, now, coin, price, partial=flag)
        elif kind == "funding" and coin in trader.positions:
            amount = Decimal(wiggle) / 100 * (1 if flag else -1)
            trader.settle_funding(
                coin=coin, amount=amount, rate=Decimal("0.0000125"), price=price, at=now
            )
        elif kind == "skip":
            trader.skip_cycle(reason=SkipReason.STALE_DATA, detail="old", as_of=now)
        elif kind == "pause":
            if trader.paused:
                trader.resume("test", now)
            else:
                trader.pause("test", "random", now)
        elif kind == "venue":
            _venue_step(venue, now, coin, flag, wiggle, index)
            app.save_venue_account(venue)
        app.save_trader(trader)
    return app


def _venue_step(
    venue: VenueAccount, now: datetime, coin: str, flag: bool, wiggle: int, index: int
) -> None:
    """Something the reconciliation finds on the shared account."""
    if wiggle % 3 == 0:
        if flag:
            venue.detect_drift(f"position:{coin}", f"{coin} off by {wiggle}", ["t0"], now)
        else:
            venue.clear_drift(f"position:{coin}", now)
    elif wiggle % 3 == 1:
        venue.observe_transfer(
            transfer_id=f"0x{index}:deposit",
            kind="deposit" if flag else "withdraw",
            amount=Decimal(wiggle) if flag else -Decimal(abs(wiggle)),
            venue_time=now,
            at=now,
        )
    elif flag:
        venue.observe_order(
            oid=abs(wiggle) % 4,
            cloid=None,
            coin=coin,
            side="B",
            size=Decimal(1),
            price=PRICES[coin],
            trigger_price=None,
            reduce_only=False,
            at=now,
        )
    else:
        venue.order_gone(abs(wiggle) % 4, now)


def _cycle(
    trader: Trader, now: datetime, coin: str, signal: str, price: Decimal, marks: dict[str, Decimal]
) -> None:
    cycle_id = trader.request_decision(
        as_of=now,
        model="m",
        snapshot="{}",
        snapshot_digest="d",
        marks=marks,
        prompt=PromptRecord("t", "v1.0.0", "digest", "v1.0.0", f"prompt at {now}"),
    )
    if signal == "garbage":
        trader.record_failure(
            cycle_id=cycle_id,
            model="m",
            reason="invalid_json",
            detail="x",
            raw_text="{",
            latency_ms=3,
            at=now,
            policy=PausePolicy(),
        )
        return
    item = DecisionItem(
        coin=coin,
        signal=Signal(signal),
        quantity=Decimal("0.5"),
        leverage=3,
        profit_target=price * Decimal("1.05"),
        stop_loss=price * Decimal("0.98"),
        confidence=Decimal("0.7"),
        risk_usd=Decimal(20),
        justification="because",
    )
    rejection = ItemRejection("SOL", ItemError.UNKNOWN_COIN, "coin", "not here")
    trader.record_response(
        cycle_id=cycle_id,
        model="m",
        raw_text="{...}",
        parsed=ParsedDecision(items=(item,), rejections=(rejection,), cot_trace="thinking"),
        tokens_in=10,
        tokens_out=5,
        cost_usd=Decimal("0.01"),
        latency_ms=4,
        at=now,
    )
    position = trader.positions.get(coin)
    if signal in ("buy_to_enter", "sell_to_enter") and position is None:
        side = OrderSide.BUY if signal == "buy_to_enter" else OrderSide.SELL
        order = PlannedOrder(
            coin=coin,
            side=side,
            size=Decimal("0.5"),
            intent=OrderIntent.OPEN_LONG if side is OrderSide.BUY else OrderIntent.OPEN_SHORT,
            reduce_only=False,
            leverage=3,
            limit_price=price,
            reason=None,
            context=EntryContext(3, ExitPlan(price * 2, price / 2, "x"), Decimal("0.7")),
        )
        trader.place(
            cycle_id=cycle_id, cloid=make_cloid(trader.id, cycle_id, "0"), order=order, at=now
        )
    elif signal == "close" and position is not None:
        order = PlannedOrder(
            coin=coin,
            side=OrderSide.SELL if position.qty > 0 else OrderSide.BUY,
            size=position.size,
            intent=OrderIntent.CLOSE,
            reduce_only=True,
            leverage=3,
            limit_price=price,
            reason=CloseReason.SIGNAL,
            context=position.context,
        )
        trader.place(
            cycle_id=cycle_id, cloid=make_cloid(trader.id, cycle_id, "c"), order=order, at=now
        )
    else:
        trader.reject(cycle_id, Rejection(coin, signal, "min_confidence", "too low", {}), now)


def _fill_pending_or_close(
    trader: Trader, now: datetime, coin: str, price: Decimal, *, partial: bool
) -> None:
    for cloid, pending in list(trader.pending.items()):
        remaining = pending.size - pending.filled
        size = remaining / 2 if partial and remaining > Decimal("0.1") else remaining
        trader.record_fill(
            cloid,
            price=price,
            size=size,
            fee=size * price * Decimal("0.00045"),
            liquidity=Liquidity.TAKER,
            at=now,
            final=size == remaining,
        )
        return
    if coin in trader.positions:
        position = trader.positions[coin]
        trader.record_fill(
            f"0xexternal{now.timestamp():.0f}",
            price=price,
            size=position.size,
            fee=Decimal("0.1"),
            liquidity=Liquidity.TAKER,
            at=now,
            coin=coin,
            side=OrderSide.SELL if position.qty > 0 else OrderSide.BUY,
            reason=CloseReason.STOP,
        )


def rebuild(app: TradingApp) -> dict[str, bytes]:
    store = MemoryStore()
    CatchUp(app, store, all_projectors(), batch_size=10_000).run_until(commit_each_batch=False)
    return store.files


histories = st.builds(build_history, st.integers(1, 3), st.lists(step, min_size=1, max_size=60))


@given(app=histories, batch=st.integers(1, 40), restarts=st.lists(st.integers(1, 400), max_size=4))
def test_incremental_projection_equals_a_full_rebuild(
    app: TradingApp, batch: int, restarts: list[int]
) -> None:
    full = rebuild(app)
    store = MemoryStore()
    head = app.max_position()
    stops = sorted({min(r, head) for r in restarts})
    catchup = CatchUp(app, store, all_projectors(), batch_size=batch)
    for stop_at in stops:
        while min(catchup.positions().values()) < stop_at:
            if catchup.step() == 0:
                break
        # A restart: everything not committed is lost; the next process reloads the store.
        catchup = CatchUp(app, store, all_projectors(), batch_size=batch)
    catchup.run_until()
    assert store.files == full


@given(app=histories, batch=st.integers(2, 25), data=st.data())
def test_redelivered_events_change_nothing(
    app: TradingApp, batch: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(1, batch - 1), label="overlap")
    full = rebuild(app)
    store = MemoryStore()
    CatchUp(Redelivering(app, overlap), store, all_projectors(), batch_size=batch).run_until()
    assert store.files == full


@given(app=histories, batch=st.integers(1, 25), fail_after=st.integers(0, 30))
def test_a_crash_in_the_middle_of_a_commit_still_converges(
    app: TradingApp, batch: int, fail_after: int
) -> None:
    full = rebuild(app)
    store = MemoryStore()
    store.fail_after = fail_after
    crashed = False
    try:
        CatchUp(app, store, all_projectors(), batch_size=batch).run_until()
    except OSError:
        crashed = True
    store.fail_after = None
    CatchUp(app, store, all_projectors(), batch_size=batch).run_until()
    assert store.files == full
    if crashed:
        assert store.writes > fail_after


def test_a_second_pass_over_a_caught_up_store_writes_nothing() -> None:
    app = build_history(
        2,
        [("cycle", 5, "BTC", "buy_to_enter", False, 0), ("fill", 1, "BTC", "hold", False, 5)],
    )
    store = MemoryStore()
    CatchUp(app, store, all_projectors()).run_until()
    writes = store.writes
    again = CatchUp(app, store, all_projectors())
    assert again.step() == 0
    assert again.commit() == []
    assert store.writes == writes
