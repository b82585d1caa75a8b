"""Account maths: fills into positions and cash, margin figures, liquidation prices, funding.

Conventions (Hyperliquid's, see the research notes §6):

* ``cash`` is cross ``rawUsd``: every cross fill adds ``−size × price`` (signed size), fees and
  funding are taken from it. An isolated position keeps its own ``iso_raw``; margin moves
  between the two when the position grows or shrinks.
* ``accountValue = cash + Σ iso_raw + Σ szi × mark``.
* A position keeps its signed cost ``basis``; ``entryPx = basis / szi`` (size-weighted on
  opening trades, unchanged by closing ones) and ``uPnL = szi × mark − basis``. A closing fill
  realises ``side × size × px − portion`` with ``portion`` the closed share of the basis
  (rounded to micro-dollars), so realised plus unrealised P&L always equals the cash flows
  exactly.
* Initial margin = notional / leverage; maintenance = notional / (2 × maxLeverage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from infrastructure.simulator.config import SimAsset
from infrastructure.simulator.rules import ONE, ZERO, usdc
from infrastructure.simulator.state import Account, Leverage, Order, Position

DEFAULT_LEVERAGE = 20
TRANSFER_FLOOR = Decimal("0.1")  # transfers keep max(initial margin, 10 % of the notional)


def default_leverage(asset: SimAsset) -> Leverage:
    """Cross 20x (the 2023 accounts' default) capped at the asset's maximum; isolated-only
    assets start isolated."""
    return Leverage(cross=not asset.only_isolated, value=min(DEFAULT_LEVERAGE, asset.max_leverage))


def leverage_of(account: Account | None, asset: SimAsset) -> Leverage:
    if account is not None:
        chosen = account.leverage.get(asset.name)
        if chosen is not None:
            return chosen
    return default_leverage(asset)


def entry_px(pos: Position) -> Decimal:
    return pos.basis / pos.szi


def upnl(pos: Position, mark: Decimal) -> Decimal:
    return pos.szi * mark - pos.basis


def notional(pos: Position, mark: Decimal) -> Decimal:
    return abs(pos.szi) * mark


def maintenance(pos: Position, mark: Decimal, asset: SimAsset) -> Decimal:
    return notional(pos, mark) / (2 * asset.max_leverage)


def isolated_margin(pos: Position, mark: Decimal) -> Decimal:
    return pos.iso_raw + pos.szi * mark


@dataclass(frozen=True)
class Summary:
    cross_value: Decimal
    cross_ntl: Decimal
    cross_raw: Decimal
    cross_im: Decimal
    cross_mm: Decimal
    total_value: Decimal
    total_ntl: Decimal
    total_raw: Decimal
    total_margin: Decimal

    @property
    def withdrawable(self) -> Decimal:
        return max(ZERO, self.cross_value - max(self.cross_im, TRANSFER_FLOOR * self.cross_ntl))


def mark_of(marks: Mapping[str, Decimal], coin: str, pos: Position) -> Decimal:
    mark = marks.get(coin)
    return mark if mark is not None else entry_px(pos)


def summarize(
    account: Account, marks: Mapping[str, Decimal], assets: Mapping[str, SimAsset]
) -> Summary:
    cross_value = total_raw = account.cash
    cross_ntl = cross_im = cross_mm = iso_ntl = iso_margin = ZERO
    for coin, pos in account.positions.items():
        asset = assets[coin]
        mark = mark_of(marks, coin, pos)
        ntl = notional(pos, mark)
        if pos.isolated:  # an isolated position's value is its margin, uPnL included
            iso_ntl += ntl
            iso_margin += isolated_margin(pos, mark)
            total_raw += pos.iso_raw
        else:
            cross_value += pos.szi * mark
            cross_ntl += ntl
            cross_im += ntl / leverage_of(account, asset).value
            cross_mm += maintenance(pos, mark, asset)
    return Summary(
        cross_value=cross_value,
        cross_ntl=cross_ntl,
        cross_raw=account.cash,
        cross_im=cross_im,
        cross_mm=cross_mm,
        total_value=cross_value + iso_margin,
        total_ntl=cross_ntl + iso_ntl,
        total_raw=total_raw,
        total_margin=cross_im + iso_margin,
    )


def order_margin(account: Account, assets_by_coin: Mapping[str, SimAsset]) -> Decimal:
    """Margin held by resting orders that may add exposure (conservatively: every resting,
    non-reduce-only limit order at its limit price)."""
    held = ZERO
    for order in account.open_orders.values():
        if order.reduce_only or order.tif is None:
            continue
        held += order.sz * order.limit_px / leverage_of(account, assets_by_coin[order.coin]).value
    return held


def available_margin(
    account: Account, marks: Mapping[str, Decimal], assets: Mapping[str, SimAsset]
) -> Decimal:
    """Cross collateral free for new exposure: value − initial margin − resting orders' margin."""
    summary = summarize(account, marks, assets)
    return summary.cross_value - summary.cross_im - order_margin(account, assets)


def liquidation_price(
    mark: Decimal, szi: Decimal, available: Decimal, asset: SimAsset
) -> Decimal | None:
    """``mark − side × available / |szi| / (1 − side × l)``, ``l = 1 / (2 × maxLeverage)``;
    None when the result is not a positive price."""
    side = ONE if szi > 0 else -ONE
    share = ONE / (2 * asset.max_leverage)
    px = mark - side * available / abs(szi) / (ONE - side * share)
    return px if px > 0 else None


@dataclass(frozen=True)
class FillEffect:
    start: Decimal
    closed_pnl: Decimal
    direction: str


def direction(start: Decimal, is_buy: bool, sz: Decimal) -> str:
    if start > 0 and not is_buy:
        return "Long > Short" if sz > start else "Close Long"
    if start < 0 and is_buy:
        return "Short > Long" if sz > -start else "Close Short"
    return "Open Long" if is_buy else "Open Short"


def apply_fill(
    account: Account,
    coin: str,
    *,
    is_buy: bool,
    sz: Decimal,
    px: Decimal,
    fee: Decimal,
    leverage: Leverage,
) -> FillEffect:
    """Book one fill; a flip is a close of the old position then an open of the new one."""
    pos = account.positions.get(coin)
    start = pos.szi if pos is not None else ZERO
    account.cash -= fee
    closed_pnl = ZERO
    closing = ZERO
    if pos is not None and (pos.szi > 0) != is_buy:
        closing = min(sz, abs(pos.szi))
        closed_pnl = _close(account, coin, pos, closing, px)
    opening = sz - closing
    if opening > 0:
        _open(account, coin, opening if is_buy else -opening, px, leverage)
    held = account.positions.get(coin)
    if held is not None:
        held.funding_change = ZERO
    return FillEffect(start, closed_pnl, direction(start, is_buy, sz))


def _close(account: Account, coin: str, pos: Position, closing: Decimal, px: Decimal) -> Decimal:
    size = abs(pos.szi)
    side = ONE if pos.szi > 0 else -ONE
    whole = closing == size
    portion = pos.basis if whole else usdc(pos.basis * closing / size)
    cash_flow = side * closing * px
    if not pos.isolated:
        account.cash += cash_flow
    elif whole:
        account.cash += pos.iso_raw + cash_flow  # all isolated margin returns to cross
        pos.iso_raw = ZERO
    else:
        released = usdc((pos.iso_raw + pos.szi * px) * closing / size, ROUND_DOWN)
        pos.iso_raw += cash_flow - released
        account.cash += released
    pos.basis -= portion
    pos.szi -= side * closing
    if pos.szi == 0:
        del account.positions[coin]
    return side * closing * px - portion


def _open(account: Account, coin: str, signed: Decimal, px: Decimal, leverage: Leverage) -> None:
    pos = account.positions.get(coin)
    if pos is None:
        pos = Position(szi=ZERO, basis=ZERO, isolated=not leverage.cross)
        account.positions[coin] = pos
    if pos.isolated:
        transfer = usdc(abs(signed) * px / leverage.value, ROUND_UP)
        account.cash -= transfer
        pos.iso_raw += transfer - signed * px
    else:
        account.cash -= signed * px
    pos.basis += signed * px
    pos.szi += signed


def pay_funding(account: Account, coin: str, pos: Position, amount: Decimal) -> None:
    """``amount`` received (+) or paid (−) by the position, booked where its margin lives."""
    if pos.isolated:
        pos.iso_raw += amount
    else:
        account.cash += amount
    pos.funding_open -= amount
    pos.funding_change -= amount
    account.funding_all[coin] = account.funding_all.get(coin, ZERO) - amount


def reduce_only_ok(order: Order, pos: Position | None) -> bool:
    """A reduce-only order may stay only against a position it can reduce."""
    return pos is not None and (pos.szi > 0) != order.is_buy
