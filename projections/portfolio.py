"""The portfolio view: per-trader books valued at recorded marks.

Primary file ``account-totals.json``: one row per trader per hourly marker (the row of
the current hour is updated in place until the hour passes), plus a ``buynhold_btc``
baseline that buys BTC with the traders' average allocation at the arena's inception.
Also renders ``positions.json``, ``leaderboard.json`` and ``since-inception-values.json``.

The books replay the same ledger maths as the domain (``domain.ledger``), so a view's
equity always equals the trader's own: allocation + realised − fees ± funding + unrealised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from domain.ledger import (
    EntryContext,
    ExitPlan,
    Position,
    add_return,
    apply_fill,
    liquidation_price,
    sharpe_ratio,
    value_account,
)
from domain.trader import Trader
from domain.values import ZERO, OrderSide
from projections.common import num, oid, originator, seconds, stable_id
from projections.documents import (
    AccountTotal,
    ExitPlanDoc,
    LeaderboardDocument,
    LeaderboardEntry,
    PositionDoc,
    PositionsDocument,
    SinceInceptionDocument,
    SinceInceptionValue,
    TraderPositions,
)
from projections.engine import Projector, ViewMeta

BASELINE_ID = "buynhold_btc"
BASELINE_COIN = "BTC"
NO_PLAN = ExitPlanDoc(profit_target=0.0, stop_loss=0.0, invalidation_condition="")


class Book(msgspec.Struct):
    id: str
    allocation: Decimal
    inception: float
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    positions: dict[str, Position] = {}
    pending: dict[str, EntryContext] = {}
    marks: dict[str, Decimal] = {}
    last_time: float = 0.0
    invocations: int = 0
    num_trades: int = 0
    num_wins: int = 0
    num_losses: int = 0
    win_dollars: Decimal = ZERO
    lose_dollars: Decimal = ZERO
    hour: int = -1  # hourly marker of the newest written row
    hour_base: float = 0.0  # equity at the end of the previous completed hour
    row_at: float = -1.0  # time of the row not yet written (rows are computed lazily)
    ret_n: int = 0
    ret_mean: float = 0.0
    ret_m2: float = 0.0
    entry_oids: dict[str, int] = {}  # coin → the venue's order id of the opening fill
    guards: dict[str, list[str]] = {}  # protection cloid → [coin, kind]
    guard_oids: dict[str, int] = {}  # "COIN:kind" → the venue's order id of the protection

    def sharpe(self) -> float:
        """Sharpe ratio of completed hourly returns (the same rule as the trader's own)."""
        return sharpe_ratio((self.ret_n, self.ret_mean, self.ret_m2))

    def add_return(self, value: float) -> None:
        self.ret_n, self.ret_mean, self.ret_m2 = add_return(
            (self.ret_n, self.ret_mean, self.ret_m2), value
        )


class PortfolioMeta(ViewMeta):
    names: dict[str, str] = {}  # aggregate id (hex) → trader config id
    books: dict[str, Book] = {}
    baseline: Book | None = None
    row_index: dict[str, int] = {}


class PortfolioState(msgspec.Struct):
    accountTotals: list[AccountTotal] = []
    lastHourlyMarkerRead: int = 0
    view: PortfolioMeta = msgspec.field(name="_view", default_factory=lambda: PortfolioMeta(""))


class PortfolioProjector(Projector[PortfolioState]):
    name = "portfolio"
    version = 1
    primary = "account-totals.json"
    state_type: ClassVar[type[Any]] = PortfolioState
    handles: ClassVar[frozenset[type[Any]] | None] = frozenset(
        {
            Trader.Registered,
            Trader.CapitalAllocated,
            Trader.DecisionRequested,
            Trader.OrderPlaced,
            Trader.OrderFilled,
            Trader.OrderRejected,
            Trader.OrderCanceled,
            Trader.PositionClosed,
            Trader.FundingSettled,
            Trader.ProtectionPlaced,
            Trader.ProtectionConfirmed,
            Trader.ProtectionCanceled,
        }
    )
    ignores: ClassVar[Mapping[type[Any], frozenset[str]]] = {
        Trader.DecisionRequested: frozenset(
            {"snapshot", "user_prompt", "prompt_template", "snapshot_digest"}
        ),
    }

    def __init__(self, max_leverage: Mapping[str, int]) -> None:
        self.max_leverage = dict(max_leverage)
        self._handlers: dict[type[Any], Callable[[PortfolioState, Any], bool]] = {
            Trader.Registered: self._registered,
            Trader.CapitalAllocated: self._allocated,
            Trader.DecisionRequested: self._requested,
            Trader.OrderPlaced: self._placed,
            Trader.OrderFilled: self._filled,
            Trader.OrderRejected: self._forget,
            Trader.OrderCanceled: self._forget,
            Trader.PositionClosed: self._closed,
            Trader.FundingSettled: self._funding,
            Trader.ProtectionPlaced: self._guard_placed,
            Trader.ProtectionConfirmed: self._guard_confirmed,
            Trader.ProtectionCanceled: self._guard_gone,
        }

    def initial(self) -> PortfolioState:
        return PortfolioState(view=PortfolioMeta(self.view_name))

    def meta(self, state: PortfolioState) -> ViewMeta:
        return state.view

    def reduce(self, state: PortfolioState, kind: type[Any], event: Any) -> bool:
        handler = self._handlers.get(kind)
        if handler is None:
            return False
        return handler(state, event)

    # -- handlers ---------------------------------------------------------------------------

    def _book(self, state: PortfolioState, event: Any) -> Book | None:
        trader = state.view.names.get(originator(event))
        return state.view.books.get(trader) if trader else None

    def _registered(self, state: PortfolioState, event: Any) -> bool:
        state.view.names[originator(event)] = event.config_id
        state.view.books[event.config_id] = Book(
            id=event.config_id,
            allocation=event.allocation,
            inception=seconds(event.timestamp),
            hour_base=float(event.allocation),
        )
        return True

    def _allocated(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        self._advance(state, book, seconds(event.timestamp))
        book.allocation = event.allocation
        return True

    def _requested(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        at = seconds(event.timestamp)
        self._advance(state, book, at)
        book.marks.update(event.marks)
        book.invocations = event.cycle_no
        btc = event.marks.get(BASELINE_COIN)
        if btc is not None:
            self._baseline(state, btc, at)
        return True

    def _baseline(self, state: PortfolioState, price: Decimal, at: float) -> None:
        baseline = state.view.baseline
        if baseline is None:
            books = list(state.view.books.values())
            capital = sum((b.allocation for b in books), ZERO) / len(books)
            inception = min(b.inception for b in books)
            if capital <= 0:
                return
            baseline = Book(
                id=BASELINE_ID, allocation=capital, inception=inception, hour_base=float(capital)
            )
            baseline.positions[BASELINE_COIN] = Position(
                coin=BASELINE_COIN,
                qty=capital / price,
                entry_price=price,
                opened_at=_from_seconds(at),
                entry_cloid="",
                context=EntryContext(leverage=1),
            )
            state.view.baseline = baseline
        self._advance(state, baseline, at)
        baseline.marks[BASELINE_COIN] = price

    def _placed(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        book.pending[event.cloid] = EntryContext(
            leverage=event.leverage,
            exit_plan=ExitPlan.from_record(event.exit_plan),
            confidence=event.confidence,
            risk_usd=event.risk_usd,
            justification=event.justification,
        )
        return False

    def _forget(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is not None:
            book.pending.pop(event.cloid, None)
        return False

    def _filled(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        self._advance(state, book, seconds(event.timestamp))
        context = book.pending.get(event.cloid) or EntryContext(leverage=1)
        before = book.positions.get(event.coin)
        effect = apply_fill(
            before,
            coin=event.coin,
            side=OrderSide(event.side),
            size=event.size,
            price=event.price,
            fee=event.fee,
            at=event.timestamp,
            cloid=event.cloid,
            context=context,
        )
        if effect.position is None:
            book.positions.pop(event.coin, None)
            book.entry_oids.pop(event.coin, None)
        else:
            book.positions[event.coin] = effect.position
            if event.oid is not None and (
                before is None or before.entry_cloid != effect.position.entry_cloid
            ):
                book.entry_oids[event.coin] = event.oid
        book.realized += effect.realized_gross
        book.fees += event.fee
        if event.final:
            book.pending.pop(event.cloid, None)
        book.marks.setdefault(event.coin, event.price)
        return True

    def _guard_placed(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is not None:
            book.guards[event.cloid] = [event.coin, event.kind]
        return False

    def _guard_confirmed(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        guard = book.guards.get(event.cloid) if book is not None else None
        if book is None or guard is None:
            return False
        book.guard_oids[f"{guard[0]}:{guard[1]}"] = event.oid
        return bool(guard[0] in book.positions)

    def _guard_gone(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        guard = book.guards.pop(event.cloid, None) if book is not None else None
        if book is None or guard is None:
            return False
        # A replacement may already be confirmed under the same key: keep its oid.
        key = f"{guard[0]}:{guard[1]}"
        live = [c for c, g in book.guards.items() if g == guard]
        if not live:
            book.guard_oids.pop(key, None)
        return bool(guard[0] in book.positions)

    def _closed(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        book.num_trades += 1
        if event.net_pnl > 0:
            book.num_wins += 1
            book.win_dollars += event.net_pnl
        else:
            book.num_losses += 1
            book.lose_dollars += event.net_pnl
        return True

    def _funding(self, state: PortfolioState, event: Any) -> bool:
        book = self._book(state, event)
        if book is None:
            return False
        self._advance(state, book, seconds(event.timestamp))
        book.funding += event.amount
        position = book.positions.get(event.coin)
        if position is not None and position.opened_at <= event.timestamp:  # as the trader's
            book.positions[event.coin] = replace(position, funding=position.funding + event.amount)
        return True

    # -- rows -------------------------------------------------------------------------------

    def _advance(self, state: PortfolioState, book: Book, at: float) -> None:
        """Before an event at ``at`` changes the book: if it starts a new hour, write the
        last row of the previous one and count its return; then mark the row as pending.

        Rows are computed only at hour boundaries and when the view is written, yet they
        are exactly what computing them after every event would give."""
        if book.row_at >= 0:
            pending = int(max(0.0, book.row_at - book.inception) // 3600)
            if int(max(0.0, at - book.inception) // 3600) > pending:
                row = self._materialize(state, book)
                if book.hour_base > 0:
                    book.add_return(row.dollar_equity / book.hour_base - 1.0)
                book.hour_base = row.dollar_equity
        book.row_at = max(book.row_at, at)

    def _materialize(self, state: PortfolioState, book: Book) -> AccountTotal:
        at = book.row_at
        elapsed = max(0.0, at - book.inception)
        marker = int(elapsed // 3600)
        book.hour = max(book.hour, marker)
        book.last_time = max(book.last_time, at)
        row = self._row(book, at, marker, int(elapsed // 60))
        index = state.view.row_index.get(row.id)
        if index is None:
            state.view.row_index[row.id] = len(state.accountTotals)
            state.accountTotals.append(row)
        else:
            state.accountTotals[index] = row
        state.lastHourlyMarkerRead = max(state.lastHourlyMarkerRead, marker)
        return row

    def output(self, state: PortfolioState, position: int) -> Any:
        for book in [*state.view.books.values(), state.view.baseline]:
            if book is not None and book.row_at >= 0:
                self._materialize(state, book)
        # One canonical order, whenever rows were written: by hour, then by trader in
        # registration order, the baseline last.
        rank = {trader: i for i, trader in enumerate(state.view.books)}
        last = len(rank)
        state.accountTotals.sort(
            key=lambda row: (row.since_inception_hourly_marker, rank.get(row.model_id, last))
        )
        state.view.row_index = {row.id: i for i, row in enumerate(state.accountTotals)}
        return super().output(state, position)

    def _row(self, book: Book, at: float, marker: int, minute: int) -> AccountTotal:
        account = value_account(
            allocation=book.allocation,
            realized_pnl=book.realized,
            fees_paid=book.fees,
            funding=book.funding,
            positions=book.positions,
            marks=book.marks,
        )
        positions = self._position_docs(book, account)
        equity = account.equity
        return AccountTotal(
            id=f"{book.id}_{marker}",
            model_id=book.id,
            timestamp=at,
            dollar_equity=num(equity),
            realized_pnl=num(book.realized - book.fees + book.funding),
            total_unrealized_pnl=num(account.unrealized_pnl),
            cum_pnl_pct=num(account.return_pct),
            sharpe_ratio=book.sharpe(),
            since_inception_hourly_marker=marker,
            since_inception_minute_marker=minute,
            positions=positions,
        )

    def _position_docs(self, book: Book, account: Any) -> dict[str, PositionDoc]:
        docs = {}
        for coin, position in book.positions.items():
            mark = book.marks.get(coin, position.entry_price)
            plan = position.context.exit_plan
            liq = liquidation_price(position, account, book.marks, self.max_leverage)
            entry_oid = book.entry_oids.get(coin) or (
                oid(position.entry_cloid) if position.entry_cloid else -1
            )
            docs[coin] = PositionDoc(
                entry_oid=entry_oid,
                risk_usd=num(position.context.risk_usd),
                confidence=num(position.context.confidence),
                index_col=None,
                exit_plan=ExitPlanDoc(
                    profit_target=num(plan.profit_target),
                    stop_loss=num(plan.stop_loss),
                    invalidation_condition=plan.invalidation_condition,
                )
                if plan
                else NO_PLAN,
                entry_time=seconds(position.opened_at),
                symbol=coin,
                entry_price=num(position.entry_price),
                tp_oid=book.guard_oids.get(f"{coin}:target", -1),
                margin=num(position.margin(mark)),
                wait_for_fill=False,
                sl_oid=book.guard_oids.get(f"{coin}:stop", -1),
                oid=entry_oid,
                current_price=num(mark),
                closed_pnl=num(position.realized_gross - position.entry_fees - position.exit_fees),
                liquidation_price=num(liq),
                commission=num(position.entry_fees + position.exit_fees),
                leverage=float(position.context.leverage),
                slippage=0.0,
                quantity=num(position.qty),
                unrealized_pnl=num(position.unrealized(mark)),
            )
        return docs

    # -- secondary documents ------------------------------------------------------------

    def _latest(self, state: PortfolioState, book: Book) -> AccountTotal | None:
        if book.hour < 0:
            return None
        return state.accountTotals[state.view.row_index[f"{book.id}_{book.hour}"]]

    def secondary(self, state: PortfolioState) -> dict[str, msgspec.Struct]:
        positions = []
        leaders = []
        since = []
        for book in state.view.books.values():
            row = self._latest(state, book)
            equity = row.dollar_equity if row else num(book.allocation)
            positions.append(
                TraderPositions(model_id=book.id, positions=row.positions if row else {})
            )
            leaders.append(
                LeaderboardEntry(
                    id=book.id,
                    num_trades=book.num_trades,
                    sharpe=book.sharpe(),
                    win_dollars=num(book.win_dollars),
                    num_losses=book.num_losses,
                    lose_dollars=num(book.lose_dollars),
                    return_pct=row.cum_pnl_pct if row else 0.0,
                    equity=equity,
                    num_wins=book.num_wins,
                )
            )
            since.append(
                SinceInceptionValue(
                    id=stable_id("trader", book.id),
                    model_id=book.id,
                    nav_since_inception=equity,
                    inception_date=book.inception,
                    num_invocations=book.invocations,
                )
            )
        baseline = state.view.baseline
        if baseline is not None:
            row = self._latest(state, baseline)
            since.append(
                SinceInceptionValue(
                    id=stable_id("baseline", BASELINE_ID),
                    model_id=BASELINE_ID,
                    nav_since_inception=row.dollar_equity if row else num(baseline.allocation),
                    inception_date=baseline.inception,
                    num_invocations=0,
                )
            )
        leaders.sort(key=lambda e: (-e.equity, e.id))
        return {
            "positions.json": PositionsDocument(accountTotals=positions),
            "leaderboard.json": LeaderboardDocument(leaderboard=leaders),
            "since-inception-values.json": SinceInceptionDocument(sinceInceptionValues=since),
        }

    def cache_keys(self, state: PortfolioState) -> dict[str, bytes]:
        keys = {}
        for book in state.view.books.values():
            row = self._latest(state, book)
            if row is None:
                continue
            keys[f"trader:{book.id}:equity"] = repr(row.dollar_equity).encode()
            keys[f"trader:{book.id}:positions"] = msgspec.json.encode(row.positions)
        return keys


def _from_seconds(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
