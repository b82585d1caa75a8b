"""The venue's mutable core: placing, matching, filling and finishing orders.

Matching rules (the simulator's choices where Hyperliquid's are not observable):

* Takers (``Ioc``, a crossing ``Gtc``, a fired trigger) walk the synthetic book up to their
  limit price, one fill per level; what they take stays taken until the next price update.
* Users never trade with each other: a taker only meets the synthetic book, and resting user
  orders fill only by the maker rule below. Resting orders still show in ``l2Book``.
* A resting order fills **in full, as maker, at its limit price** when the mid passes it
  strictly: a buy when ``mid < limitPx``, a sell when ``mid > limitPx`` (checked on every
  ``advance``).
* A ``Gtc`` that fills partly and rests answers ``resting`` (the order is still open; its
  fills are in userFills); fully filled, it answers ``filled``.
* Reduce-only orders are capped to the position when placed and when they fill. Right after
  any fill, every reduce-only order on that coin that could no longer reduce the position
  (flat, or flipped) is canceled as ``reduceOnlyCanceled``; normalTpsl children still waiting
  for their parent are left alone.
* Margin is checked at placement for the exposure an order adds (taker legs at their fill
  prices, a resting remainder at its limit price, fees included) against cross collateral
  less the initial margin of positions and of resting non-reduce-only orders.
* Triggers fire on the mark. A fired market trigger is an IOC whose limit price is the worst
  fill (nothing fills: ``canceled``); a fired limit trigger takes what it can up to its limit
  and rests the rest as a Gtc (status ``triggered``). Triggers that add exposure are checked
  for margin when they fire (``marginCanceled``), and for the $10 minimum at placement on
  their trigger price.
* The open-order cap counts resting and trigger orders; an IOC never rests, so it is never
  refused for it. Rejected orders get an oid and a ``...Rejected`` status in the history;
  orders refused before that (invalid price/size, duplicate cloid, cap) do not.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from infrastructure.simulator import errors
from infrastructure.simulator.actions import OrderWire
from infrastructure.simulator.book import (
    Book,
    Take,
    available,
    build_book,
    impact_price,
    plan_take,
)
from infrastructure.simulator.candles import CandleBars
from infrastructure.simulator.config import SimAsset, SimConfig
from infrastructure.simulator.journal import Journal
from infrastructure.simulator.margin import (
    apply_fill,
    available_margin,
    leverage_of,
    reduce_only_ok,
)
from infrastructure.simulator.rules import ZERO, price_ok, size_ok, usdc, wire, wire_rounded
from infrastructure.simulator.state import (
    Account,
    Core,
    Fill,
    MarketPrices,
    Order,
    OrderDone,
    Position,
    Record,
    Trigger,
)

MIN_NOTIONAL = Decimal(10)
IMPACT_USD = {"BTC": Decimal(20_000), "ETH": Decimal(20_000)}
DEFAULT_IMPACT_USD = Decimal(6_000)
PREMIUM_QUANTUM = Decimal("1e-10")
AVG_PX_DECIMALS = 8

Status = dict[str, Any] | str


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def trigger_hit(order: Order, mark: Decimal) -> bool:
    trigger = order.trigger
    assert trigger is not None
    return mark >= trigger.px if trigger.fires_above(order.is_buy) else mark <= trigger.px


def only_reduces(order: Order, pos: Position | None) -> bool:
    if order.reduce_only:
        return True
    return pos is not None and (pos.szi > 0) != order.is_buy and order.sz <= abs(pos.szi)


def _with_cloid(body: dict[str, Any], order: Order) -> dict[str, Any]:
    if order.cloid is not None:
        body["cloid"] = order.cloid
    return body


class Venue:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.assets = config.universe
        self.by_coin: dict[str, SimAsset] = {asset.name: asset for asset in self.assets}
        self.core = Core()
        self.journal = Journal(config)
        self.candles = CandleBars()
        self._books: dict[str, tuple[int, Book]] = {}
        self.changed = False  # something durable changed since the last commit

    def restore(self, core: Core, records: list[Record]) -> None:
        self.core = core
        self.journal.replay(records)

    # -- lookups ----------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.core.now_ms

    def account(self, user: str) -> Account:
        acct = self.core.accounts.get(user)
        if acct is None:
            acct = self.core.accounts[user] = Account()
        return acct

    def market(self, coin: str) -> MarketPrices:
        prices = self.core.markets.get(coin)
        if prices is None:
            prices = self.core.markets[coin] = MarketPrices()
        return prices

    def prices(self, coin: str) -> MarketPrices:
        """The coin's prices without creating an entry (blank if never priced)."""
        return self.core.markets.get(coin) or MarketPrices()

    def marks(self) -> dict[str, Decimal]:
        return {c: m.mark for c, m in self.core.markets.items() if m.mark is not None}

    def book(self, coin: str) -> Book | None:
        prices = self.core.markets.get(coin)
        if prices is None or prices.mid is None:
            return None
        cached = self._books.get(coin)
        if cached is not None and cached[0] == self.core.epoch:
            return cached[1]
        asset = self.by_coin[coin]
        book = build_book(
            self.config.book, coin, prices.mid, asset.sz_decimals, self.config.seed, self.core.epoch
        )
        self._books[coin] = (self.core.epoch, book)
        return book

    def find_open(self, acct: Account, ref: int | str) -> Order | None:
        if isinstance(ref, int):
            return acct.open_orders.get(ref)
        return next((o for o in acct.open_orders.values() if o.cloid == ref), None)

    def find_any(self, user: str, ref: int | str) -> Order | None:
        acct = self.core.accounts.get(user)
        found = None if acct is None else self.find_open(acct, ref)
        if found is not None:
            return found
        if isinstance(ref, int):
            return self.journal.finished(user, ref)
        return self.journal.finished_by_cloid(user, ref)

    # -- records ----------------------------------------------------------------------------------

    def record(self, record: Record) -> None:
        self.journal.add(record)
        self.changed = True

    def next_seq(self) -> int:
        self.core.seq += 1
        return self.core.seq

    def new_oid(self) -> int:
        oid = self.core.next_oid
        self.core.next_oid += 1
        return oid

    def _hash(self, user: str, oid: int) -> str:
        digest = hashlib.sha256(f"{self.config.seed}:{user}:{oid}:{self.now}".encode()).hexdigest()
        return "0x" + digest

    def finish(self, acct: Account | None, order: Order, status: str) -> None:
        """Order ``order`` leaves the book (or never entered it) with ``status``."""
        if acct is not None:
            acct.open_orders.pop(order.oid, None)
        order.status = status
        order.status_ts = self.now
        self.record(OrderDone(self.next_seq(), order))
        if status != "filled" and acct is not None and order.filled == 0:
            for child in [o for o in acct.open_orders.values() if o.parent == order.oid]:
                if child.waiting and child.oid in acct.open_orders:
                    self.finish(acct, child, "canceled")

    def _reject(self, order: Order, status: str, text: str) -> tuple[Status, None]:
        self.finish(None, order, status)
        return {"error": text.format(asset=order.asset)}, None

    # -- placing ----------------------------------------------------------------------------------

    def submit(self, user: str, wires: list[OrderWire], grouping: str) -> list[Status]:
        statuses: list[Status] = []
        if grouping == "normalTpsl" and wires:
            status, parent = self.place(user, wires[0])
            statuses.append(status)
            for child in wires[1:]:
                if child.trigger is None:
                    statuses.append({"error": errors.TPSL_CHILD_NOT_TRIGGER})
                elif parent is None:
                    statuses.append({"error": errors.TPSL_PARENT_FAILED})
                else:
                    statuses.append(self.place(user, child, parent=parent)[0])
            return statuses
        group = self.core.next_oid  # unique: the oid this action's first order gets, or later
        for one in wires:
            if grouping == "positionTpsl":
                if one.trigger is None:
                    statuses.append({"error": errors.TPSL_CHILD_NOT_TRIGGER})
                    continue
                statuses.append(self.place(user, one, position_group=group)[0])
            else:
                statuses.append(self.place(user, one)[0])
        return statuses

    def place(
        self,
        user: str,
        wire_order: OrderWire,
        *,
        parent: Order | None = None,
        position_group: int | None = None,
        inherit: Order | None = None,
    ) -> tuple[Status, Order | None]:
        """One order: its status entry and, when accepted, the order."""
        if not 0 <= wire_order.asset < len(self.assets):
            return {"error": errors.INVALID_ASSET}, None
        asset = self.assets[wire_order.asset]
        px, sz, trigger = wire_order.px, wire_order.sz, wire_order.trigger
        if px is None or not price_ok(px, asset.sz_decimals):
            return {"error": errors.INVALID_PRICE}, None
        if trigger is not None and (
            trigger.px is None or not price_ok(trigger.px, asset.sz_decimals)
        ):
            return {"error": errors.INVALID_PRICE}, None
        if sz is None or not size_ok(sz, asset.sz_decimals):
            return {"error": errors.INVALID_SIZE}, None
        acct = self.account(user)
        if wire_order.cloid is not None and self.find_open(acct, wire_order.cloid) is not None:
            return {"error": self.config.duplicate_cloid_error}, None
        if wire_order.tif != "Ioc" and len(acct.open_orders) >= self.config.max_open_orders:
            return {"error": errors.TOO_MANY_OPEN.format(asset=wire_order.asset)}, None
        order = Order(
            oid=self.new_oid(),
            user=user,
            asset=wire_order.asset,
            coin=asset.name,
            is_buy=wire_order.is_buy,
            limit_px=px,
            orig_sz=sz,
            sz=sz,
            reduce_only=wire_order.reduce_only,
            timestamp=self.now,
            tif=wire_order.tif,
            cloid=wire_order.cloid,
            status_ts=self.now,
        )
        if trigger is None:
            return self._place_limit(acct, order)
        assert trigger.px is not None
        order.trigger = Trigger(trigger.is_market, trigger.px, trigger.tpsl)
        if inherit is not None:
            order.parent, order.group = inherit.parent, inherit.group
            order.waiting, order.position_tpsl = inherit.waiting, inherit.position_tpsl
            order.reduce_only = order.reduce_only or inherit.reduce_only
        if parent is not None:
            order.reduce_only, order.parent, order.group = True, parent.oid, parent.oid
            order.waiting = parent.filled == 0
            if not order.waiting:
                order.sz = parent.filled
        if position_group is not None:
            order.reduce_only, order.position_tpsl, order.group = True, True, position_group
        return self._place_trigger(acct, order)

    def _place_limit(self, acct: Account, order: Order) -> tuple[Status, Order | None]:
        pos = acct.positions.get(order.coin)
        if order.reduce_only:
            if not reduce_only_ok(order, pos):
                return self._reject(order, "reduceOnlyRejected", errors.REDUCE_ONLY)
            assert pos is not None
            order.sz = min(order.sz, abs(pos.szi))
        elif not only_reduces(order, pos) and order.sz * order.limit_px < MIN_NOTIONAL:
            return self._reject(order, "minTradeNtlRejected", errors.MIN_VALUE)
        book = self.book(order.coin)
        if order.tif == "Alo":
            crossed = self._alo_cross(order, book)
            if crossed is not None:
                return self._reject(order, "badAloPxRejected", crossed)
            takes: list[Take] = []
        else:
            takes = self._plan(order, book, order.sz)
        if not order.reduce_only and not self._margin_ok(
            acct, order, takes, rests=order.tif != "Ioc"
        ):
            return self._reject(order, "perpMarginRejected", errors.MARGIN)
        if order.tif == "Ioc" and not takes:
            return self._reject(order, "iocCancelRejected", errors.IOC_NO_MATCH)
        total, notional = self._take(acct, order, takes)
        if order.tif == "Ioc" or order.sz == 0:
            order.sz = ZERO
            self.finish(None, order, "filled")
            status: Status = self._filled(order, total, notional)
        else:
            acct.open_orders[order.oid] = order
            status = {"resting": _with_cloid({"oid": order.oid}, order)}
        self.after_fills(acct, order)
        return status, order

    def _place_trigger(self, acct: Account, order: Order) -> tuple[Status, Order | None]:
        mark = self.market(order.coin).mark
        if mark is not None and trigger_hit(order, mark):
            return self._reject(order, "badTriggerPxRejected", errors.BAD_TRIGGER)
        pos = acct.positions.get(order.coin)
        if order.reduce_only and not order.waiting and not reduce_only_ok(order, pos):
            return self._reject(order, "reduceOnlyRejected", errors.REDUCE_ONLY)
        assert order.trigger is not None
        if not only_reduces(order, pos) and order.sz * order.trigger.px < MIN_NOTIONAL:
            return self._reject(order, "minTradeNtlRejected", errors.MIN_VALUE)
        order.tif = None
        acct.open_orders[order.oid] = order
        return ("waitingForFill" if order.waiting else "waitingForTrigger"), order

    def _filled(self, order: Order, total: Decimal, notional: Decimal) -> Status:
        avg = notional / total if total > 0 else order.limit_px
        body = {
            "totalSz": wire(total),
            "avgPx": wire_rounded(avg, AVG_PX_DECIMALS),
            "oid": order.oid,
        }
        return {"filled": _with_cloid(body, order)}

    def _alo_cross(self, order: Order, book: Book | None) -> str | None:
        if book is None:
            return None
        prices = self.market(order.coin)
        bids = available(book.bids, prices.taken_bids)
        asks = available(book.asks, prices.taken_asks)
        crossing = (
            bool(asks) and order.limit_px >= asks[0].px
            if order.is_buy
            else bool(bids) and order.limit_px <= bids[0].px
        )
        if not crossing:
            return None
        bid = wire(bids[0].px) if bids else "0.0"
        ask = wire(asks[0].px) if asks else "0.0"
        return errors.ALO_CROSS.format(bid=bid, ask=ask, asset=order.asset)

    # -- matching -------------------------------------------------------------------------------

    def _plan(self, order: Order, book: Book | None, size: Decimal) -> list[Take]:
        if book is None:
            return []
        prices = self.market(order.coin)
        levels = book.side(bids=not order.is_buy)
        taken = prices.taken_asks if order.is_buy else prices.taken_bids
        return plan_take(levels, taken, is_buy=order.is_buy, limit_px=order.limit_px, size=size)

    def _margin_ok(self, acct: Account, order: Order, takes: list[Take], *, rests: bool) -> bool:
        """Whether cross collateral covers the exposure this order adds, fees included."""
        asset = self.assets[order.asset]
        pos = acct.positions.get(order.coin)
        szi = pos.szi if pos is not None else ZERO
        added = fees = ZERO
        legs = [(take.sz, take.px, self.config.taker_fee) for take in takes]
        if rests:
            legs.append(
                (order.sz - sum((t.sz for t in takes), ZERO), order.limit_px, self.config.maker_fee)
            )
        for size, px, fee_rate in legs:
            closing = min(size, abs(szi)) if szi != 0 and (szi > 0) != order.is_buy else ZERO
            added += (size - closing) * px
            fees += size * px * fee_rate
            szi += size if order.is_buy else -size
        if added <= 0:
            return True
        required = added / leverage_of(acct, asset).value + fees
        return required <= available_margin(acct, self.marks(), self.by_coin)

    def _take(self, acct: Account, order: Order, takes: list[Take]) -> tuple[Decimal, Decimal]:
        prices = self.market(order.coin)
        taken = prices.taken_asks if order.is_buy else prices.taken_bids
        total = notional = ZERO
        for take in takes:
            taken[take.level] = taken.get(take.level, ZERO) + take.sz
            self.fill(acct, order, take.px, take.sz, crossed=True)
            total += take.sz
            notional += take.sz * take.px
        return total, notional

    def fill(
        self,
        acct: Account,
        order: Order,
        px: Decimal,
        sz: Decimal,
        *,
        crossed: bool,
        liquidation_mark: Decimal | None = None,
    ) -> None:
        """Book one fill of ``order`` for its account (position, cash, fee, history)."""
        asset = self.assets[order.asset]
        notional = sz * px
        fee = usdc(notional * (self.config.taker_fee if crossed else self.config.maker_fee))
        effect = apply_fill(
            acct,
            order.coin,
            is_buy=order.is_buy,
            sz=sz,
            px=px,
            fee=fee,
            leverage=leverage_of(acct, asset),
        )
        order.sz -= sz
        order.filled += sz
        acct.volume += notional
        day = acct.daily_volume.setdefault(utc_day(self.now), [ZERO, ZERO])
        day[0 if crossed else 1] += notional
        tid = self.core.next_tid
        self.core.next_tid += 1
        self.record(
            Fill(
                seq=self.next_seq(),
                user=order.user,
                coin=order.coin,
                px=px,
                sz=sz,
                is_buy=order.is_buy,
                time=self.now,
                start=effect.start,
                dir=effect.direction,
                closed_pnl=effect.closed_pnl,
                hash=self._hash(order.user, order.oid),
                oid=order.oid,
                crossed=crossed,
                fee=fee,
                tid=tid,
                cloid=order.cloid,
                liquidation_mark=liquidation_mark,
            )
        )
        self.candles.on_trade(order.coin, self.now, sz, px)
        for child in acct.open_orders.values():
            if child.parent == order.oid:  # normalTpsl: children follow the parent's filled size
                child.waiting = False
                child.sz = order.filled

    def after_fills(self, acct: Account, order: Order) -> None:
        """Cancel a filled TP/SL's siblings, then reduce-only orders that can no longer reduce."""
        if order.trigger is not None and order.group is not None and order.filled > 0:
            for other in list(acct.open_orders.values()):
                if (
                    other.group == order.group
                    and other.oid != order.oid
                    and other.trigger is not None
                    and other.oid in acct.open_orders
                ):
                    self.finish(acct, other, "siblingFilledCanceled")
        pos = acct.positions.get(order.coin)
        for other in list(acct.open_orders.values()):
            if (
                other.coin == order.coin
                and other.reduce_only
                and not other.waiting
                and other.oid in acct.open_orders
                and not reduce_only_ok(other, pos)
            ):
                self.finish(acct, other, "reduceOnlyCanceled")

    # -- triggers and resting orders (driven by advance) -----------------------------------------

    def fire(self, acct: Account, order: Order) -> None:
        """A trigger whose condition the mark met: market → IOC at worst price ``limitPx``;
        limit → a Gtc at ``limitPx`` (taker part first, the rest rests as ``triggered``)."""
        trigger = order.trigger
        assert trigger is not None
        order.triggered = True
        pos = acct.positions.get(order.coin)
        if order.reduce_only:
            if not reduce_only_ok(order, pos):
                self.finish(acct, order, "reduceOnlyCanceled")
                return
            assert pos is not None
            order.sz = min(order.sz, abs(pos.szi))
        takes = self._plan(order, self.book(order.coin), order.sz)
        rests = not trigger.is_market
        if not order.reduce_only and not self._margin_ok(acct, order, takes, rests=rests):
            self.finish(acct, order, "marginCanceled")
            return
        total, _ = self._take(acct, order, takes)
        if trigger.is_market or order.sz == 0:
            order.sz = ZERO if total > 0 else order.sz
            self.finish(acct, order, "filled" if total > 0 else "canceled")
        else:
            order.tif = "Gtc"
            order.status, order.status_ts = "triggered", self.now
        self.after_fills(acct, order)

    def fill_resting(self, acct: Account, order: Order) -> None:
        prices = self.market(order.coin)
        mid = prices.mid
        if mid is None or not (mid < order.limit_px if order.is_buy else mid > order.limit_px):
            return
        size = order.sz
        if order.reduce_only:
            pos = acct.positions.get(order.coin)
            if not reduce_only_ok(order, pos):
                self.finish(acct, order, "reduceOnlyCanceled")
                return
            assert pos is not None
            size = min(size, abs(pos.szi))
        self.fill(acct, order, order.limit_px, size, crossed=False)
        if order.sz == 0:
            self.finish(acct, order, "filled")
        self.after_fills(acct, order)

    # -- cancel and modify ----------------------------------------------------------------------

    def cancel(self, acct: Account, asset: int, ref: int | str) -> Status:
        order = self.find_open(acct, ref)
        if order is None or order.asset != asset:
            return {"error": errors.CANCEL_MISSING}
        self.finish(acct, order, "canceled")
        return "success"

    def modify(self, user: str, ref: int | str, wire_order: OrderWire) -> Status:
        """Replace an open order by a new one (new oid). If the new one is refused, the old one
        stays as it was."""
        acct = self.account(user)
        old = self.find_open(acct, ref)
        if old is None:  # the same order twice in one batch
            return {"error": errors.MODIFY_MISSING}
        del acct.open_orders[old.oid]
        if wire_order.cloid is None and old.cloid is not None:
            # The order keeps its client id across a modify (ccxt's editOrder sends none): a
            # cancel or status query by that cloid reaches the replacement.
            wire_order = dataclasses.replace(wire_order, cloid=old.cloid)
        status, new = self.place(user, wire_order, inherit=old)
        if new is None:
            acct.open_orders[old.oid] = old
            return status
        old.status, old.status_ts = "canceled", self.now
        self.record(OrderDone(self.next_seq(), old))
        for child in list(acct.open_orders.values()):
            if child.parent == old.oid:  # normalTpsl children follow the replacement
                child.parent = child.group = new.oid
                if new.filled > 0:
                    child.waiting, child.sz = False, new.filled
        return status

    # -- price context ----------------------------------------------------------------------------

    def impact_prices(self, coin: str) -> tuple[Decimal, Decimal] | None:
        """Average prices of selling and buying the impact notional into the book."""
        book = self.book(coin)
        if book is None:
            return None
        prices = self.prices(coin)
        size = IMPACT_USD.get(coin, DEFAULT_IMPACT_USD)
        bid = impact_price(book.side(bids=True), prices.taken_bids, size)
        ask = impact_price(book.side(bids=False), prices.taken_asks, size)
        return None if bid is None or ask is None else (bid, ask)

    def premium(self, coin: str) -> Decimal | None:
        """``(max(impactBid − oracle, 0) − max(oracle − impactAsk, 0)) / oracle``."""
        oracle = self.prices(coin).oracle
        impact = self.impact_prices(coin)
        if oracle is None or impact is None:
            return None
        bid, ask = impact
        raw = (max(bid - oracle, ZERO) - max(oracle - ask, ZERO)) / oracle
        return raw.quantize(PREMIUM_QUANTUM)
