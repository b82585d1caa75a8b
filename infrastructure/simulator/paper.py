"""An in-process paper exchange with Hyperliquid's basic rules.

Market (IOC) orders fill at the mark plus slippage; taker fee 0.045 %; per-asset leverage
caps; a cross-margin check per sub-account; reduce-only closes; marked to market every
tick. Each sub-account (one per trader) is funded with the trader's allocation. State is
kept in a JSON file (atomically replaced) so a restarted engine finds the same venue,
and orders are remembered by cloid: a resubmitted cloid gets its first outcome back,
never a second fill.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from application.ports import OrderRequest, OrderResult, OrderStatus, VenuePosition
from domain.risk import AssetRules
from domain.values import Liquidity, OrderSide
from domain.venue import is_valid_size, round_price

log = logging.getLogger("nof0.sim")

TAKER_FEE = Decimal("0.00045")
MAKER_FEE = Decimal("0.00015")
MAX_REMEMBERED_ORDERS = 20_000

#: Hyperliquid's perpetual metadata for the default universe (szDecimals, max leverage).
HYPERLIQUID_ASSETS: dict[str, AssetRules] = {
    "BTC": AssetRules("BTC", sz_decimals=5, max_leverage=40),
    "ETH": AssetRules("ETH", sz_decimals=4, max_leverage=25),
    "SOL": AssetRules("SOL", sz_decimals=2, max_leverage=20),
    "BNB": AssetRules("BNB", sz_decimals=3, max_leverage=10),
    "DOGE": AssetRules("DOGE", sz_decimals=0, max_leverage=10),
    "XRP": AssetRules("XRP", sz_decimals=0, max_leverage=20),
}


class _Position(msgspec.Struct):
    qty: Decimal
    entry_price: Decimal
    leverage: int


class _Account(msgspec.Struct):
    cash: Decimal  # deposits + realised P&L − fees
    positions: dict[str, _Position] = {}
    leverage: dict[str, int] = {}


class _Order(msgspec.Struct):
    cloid: str
    status: str
    filled_size: Decimal
    avg_price: Decimal
    fee: Decimal
    error: str
    detail: str


class _State(msgspec.Struct):
    accounts: dict[str, _Account] = {}
    orders: dict[str, dict[str, _Order]] = {}
    marks: dict[str, Decimal] = {}
    mark_time: datetime | None = None


class PaperExchange:
    def __init__(
        self,
        name: str,
        *,
        state_path: Path | None,
        slippage_bps: Decimal = Decimal(2),
        assets: Mapping[str, AssetRules] | None = None,
        fee_taker: Decimal = TAKER_FEE,
    ) -> None:
        self.name = name
        self.fee_taker = fee_taker
        self.slippage = slippage_bps / Decimal(10_000)
        self._assets = dict(assets or HYPERLIQUID_ASSETS)
        self._path = state_path
        self._state = self._load()

    # -- persistence ------------------------------------------------------------------------

    def _load(self) -> _State:
        if self._path is None or not self._path.exists():
            return _State()
        return msgspec.json.decode(self._path.read_bytes(), type=_State)

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        data = msgspec.json.encode(self._state)
        fd, tmp = tempfile.mkstemp(prefix=".sim-", dir=self._path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- Exchange port ---------------------------------------------------------------------

    async def assets(self) -> Mapping[str, AssetRules]:
        return self._assets

    async def ensure_account(self, account: str, allocation: Decimal) -> None:
        if account not in self._state.accounts:
            self._state.accounts[account] = _Account(cash=allocation)
            self._save()
            log.info("sim %s: funded sub-account %s with %s USDC", self.name, account, allocation)

    def mark(self, prices: Mapping[str, Decimal], at: datetime) -> None:
        self._state.marks.update(prices)
        self._state.mark_time = at

    async def positions(self, account: str) -> dict[str, VenuePosition]:
        acct = self._state.accounts.get(account)
        if acct is None:
            return {}
        return {
            coin: VenuePosition(coin=coin, qty=p.qty, entry_price=p.entry_price)
            for coin, p in acct.positions.items()
        }

    async def order_status(self, account: str, cloid: str) -> OrderResult:
        known = self._state.orders.get(account, {}).get(cloid)
        if known is None:
            return OrderResult(cloid=cloid, status=OrderStatus.UNKNOWN)
        return self._result(known)

    def account_value(self, account: str) -> Decimal:
        acct = self._state.accounts[account]
        value = acct.cash
        for coin, position in acct.positions.items():
            mark = self._state.marks.get(coin, position.entry_price)
            value += (mark - position.entry_price) * position.qty
        return value

    def _margin_used(self, acct: _Account) -> Decimal:
        used = Decimal(0)
        for coin, position in acct.positions.items():
            mark = self._state.marks.get(coin, position.entry_price)
            used += abs(position.qty) * mark / Decimal(position.leverage)
        return used

    async def place_order(self, order: OrderRequest) -> OrderResult:
        remembered = self._state.orders.setdefault(order.account, {})
        known = remembered.get(order.cloid)
        if known is not None:
            return self._result(known)
        outcome = self._execute(order)
        remembered[order.cloid] = outcome
        if len(remembered) > MAX_REMEMBERED_ORDERS:
            for stale in list(remembered)[: len(remembered) - MAX_REMEMBERED_ORDERS]:
                del remembered[stale]
        self._save()
        return self._result(outcome)

    # -- matching ---------------------------------------------------------------------------

    @staticmethod
    def _result(order: _Order) -> OrderResult:
        return OrderResult(
            cloid=order.cloid,
            status=OrderStatus(order.status),
            filled_size=order.filled_size,
            avg_price=order.avg_price,
            fee=order.fee,
            liquidity=Liquidity.TAKER,
            error=order.error,
            detail=order.detail,
        )

    def _reject(self, order: OrderRequest, error: str, detail: str = "") -> _Order:
        return _Order(
            cloid=order.cloid,
            status=OrderStatus.REJECTED.value,
            filled_size=Decimal(0),
            avg_price=Decimal(0),
            fee=Decimal(0),
            error=error,
            detail=detail,
        )

    def _execute(self, order: OrderRequest) -> _Order:
        acct = self._state.accounts.get(order.account)
        if acct is None:
            return self._reject(order, "unknown_account", f"no sub-account {order.account}")
        asset = self._assets.get(order.coin)
        if asset is None:
            return self._reject(order, "unknown_asset", f"{order.coin} is not listed")
        mark = self._state.marks.get(order.coin)
        if mark is None:
            return self._reject(order, "no_price", f"no mark price for {order.coin} yet")
        if not is_valid_size(order.size, asset.sz_decimals):
            return self._reject(
                order, "invalid_size", f"size {order.size} is not a multiple of the lot"
            )
        if not 1 <= order.leverage <= asset.max_leverage:
            return self._reject(
                order,
                "invalid_leverage",
                f"leverage {order.leverage} outside 1..{asset.max_leverage} for {order.coin}",
            )
        buy = order.side is OrderSide.BUY
        position = acct.positions.get(order.coin)
        size = order.size
        if order.reduce_only:
            if position is None or (position.qty > 0) == buy:
                return self._reject(
                    order, "reduce_only", "Reduce only order would increase position."
                )
            size = min(size, abs(position.qty))
        factor = Decimal(1) + self.slippage if buy else Decimal(1) - self.slippage
        price = round_price(mark * factor, asset.sz_decimals, up=buy)
        if (buy and price > order.limit_price) or (not buy and price < order.limit_price):
            return self._reject(
                order,
                "no_match",
                "Order could not immediately match against any resting orders. "
                f"asset={order.coin} price={price} limit={order.limit_price}",
            )
        notional = size * price
        if not order.reduce_only and notional < asset.min_order_value:
            return self._reject(
                order, "min_value", f"Order must have minimum value of ${asset.min_order_value}."
            )
        fee = (notional * self.fee_taker).quantize(Decimal("0.000001"))
        increasing = position is None or (position.qty > 0) == buy
        # The size that adds exposure: all of it, or what is left after closing on a flip.
        opening = size
        released = Decimal(0)
        if position is not None and not increasing:
            opening = max(Decimal(0), size - abs(position.qty))
            held_mark = self._state.marks.get(order.coin, position.entry_price)
            released = abs(position.qty) * held_mark / Decimal(position.leverage)
        if opening > 0:
            margin_needed = opening * price / Decimal(order.leverage)
            available = self.account_value(order.account) - self._margin_used(acct) + released
            if margin_needed + fee > available:
                return self._reject(
                    order,
                    "insufficient_margin",
                    f"Insufficient margin to place order. needed {margin_needed + fee:.2f}, "
                    f"available {available:.2f}",
                )
        self._fill(acct, order.coin, buy, size, price, fee, order.leverage)
        return _Order(
            cloid=order.cloid,
            status=OrderStatus.FILLED.value,
            filled_size=size,
            avg_price=price,
            fee=fee,
            error="",
            detail="",
        )

    @staticmethod
    def _fill(
        acct: _Account, coin: str, buy: bool, size: Decimal, price: Decimal, fee: Decimal, lev: int
    ) -> None:
        signed = size if buy else -size
        acct.cash -= fee
        position = acct.positions.get(coin)
        if position is None:
            acct.positions[coin] = _Position(qty=signed, entry_price=price, leverage=lev)
            return
        if (position.qty > 0) == buy:
            total = abs(position.qty) + size
            position.entry_price = (abs(position.qty) * position.entry_price + size * price) / total
            position.qty += signed
            position.leverage = lev
            return
        closing = min(size, abs(position.qty))
        direction = Decimal(1) if position.qty > 0 else Decimal(-1)
        acct.cash += (price - position.entry_price) * closing * direction
        position.qty += signed
        if position.qty == 0:
            del acct.positions[coin]
        elif (position.qty > 0) != (direction > 0):
            # Flipped: the new side opened at this price with this order's leverage.
            position.entry_price = price
            position.leverage = lev
