"""Account settings actions: updateLeverage, updateIsolatedMargin, scheduleCancel.

Each returns None on success or the whole-action error text.

* Leverage is per (account, asset), 1..maxLeverage, cross or isolated; switching the type
  with an open position is refused. Lowering cross leverage with a position needs the extra
  initial margin to be free; an isolated position whose margin no longer covers the new
  initial margin takes the difference from cross collateral.
* Isolated margin can be added from free cross collateral and removed down to
  ``max(initial margin, 10 % of the position value)``.
* A scheduled cancel must be at least 5 s ahead; at most 10 may fire per UTC day.
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from infrastructure.simulator import errors
from infrastructure.simulator.margin import (
    TRANSFER_FLOOR,
    available_margin,
    isolated_margin,
    leverage_of,
    mark_of,
    notional,
)
from infrastructure.simulator.rules import usdc
from infrastructure.simulator.state import Leverage
from infrastructure.simulator.trading import Venue, utc_day

SCHEDULE_LEAD_MS = 5_000
SCHEDULED_CANCELS_PER_DAY = 10
USD_MICROS = 6


def update_leverage(
    venue: Venue, user: str, asset_id: int, is_cross: bool, leverage: int
) -> str | None:
    if not 0 <= asset_id < len(venue.assets):
        return errors.INVALID_ASSET
    asset = venue.assets[asset_id]
    if not 1 <= leverage <= asset.max_leverage:
        return errors.INVALID_LEVERAGE
    if is_cross and asset.only_isolated:
        return errors.CROSS_NOT_ALLOWED
    acct = venue.account(user)
    chosen = Leverage(cross=is_cross, value=leverage)
    pos = acct.positions.get(asset.name)
    if pos is None:
        acct.leverage[asset.name] = chosen
        return None
    if pos.isolated == is_cross:
        return errors.SWITCH_MARGIN_MODE
    marks = venue.marks()
    if is_cross:
        before = leverage_of(acct, asset)
        acct.leverage[asset.name] = chosen
        if leverage < before.value and available_margin(acct, marks, venue.by_coin) < 0:
            acct.leverage[asset.name] = before
            return errors.LEVERAGE_MARGIN
        return None
    mark = mark_of(marks, asset.name, pos)
    shortfall = notional(pos, mark) / leverage - isolated_margin(pos, mark)
    if shortfall > 0:
        top_up = usdc(shortfall, ROUND_UP)
        if available_margin(acct, marks, venue.by_coin) < top_up:
            return errors.LEVERAGE_MARGIN
        acct.cash -= top_up
        pos.iso_raw += top_up
    acct.leverage[asset.name] = chosen
    return None


def update_isolated_margin(venue: Venue, user: str, asset_id: int, ntli: int) -> str | None:
    """Move ``ntli`` micro-dollars into (+) or out of (−) an isolated position's margin."""
    if not 0 <= asset_id < len(venue.assets):
        return errors.INVALID_ASSET
    asset = venue.assets[asset_id]
    acct = venue.account(user)
    pos = acct.positions.get(asset.name)
    if pos is None or not pos.isolated:
        return errors.NOT_ISOLATED
    amount = Decimal(ntli).scaleb(-USD_MICROS)
    marks = venue.marks()
    if amount > 0 and available_margin(acct, marks, venue.by_coin) < amount:
        return errors.ISOLATED_ADD_MARGIN
    if amount < 0:
        mark = mark_of(marks, asset.name, pos)
        value = notional(pos, mark)
        keep = max(value / leverage_of(acct, asset).value, TRANSFER_FLOOR * value)
        if isolated_margin(pos, mark) + amount < keep:
            return errors.ISOLATED_REMOVE_MARGIN
    acct.cash -= amount
    pos.iso_raw += amount
    return None


def schedule_cancel(venue: Venue, user: str, time_ms: int | None) -> str | None:
    acct = venue.account(user)
    if time_ms is None:
        acct.cancel_at = None
        return None
    required = venue.config.schedule_cancel_min_volume
    if acct.volume < required:
        return errors.SCHEDULE_VOLUME.format(
            required=f"{required.normalize():f}",
            traded=f"{acct.volume.quantize(Decimal('0.01')):f}",
        )
    if time_ms < venue.now + SCHEDULE_LEAD_MS:
        return errors.SCHEDULE_TOO_EARLY
    if acct.cancels_fired.get(utc_day(venue.now), 0) >= SCHEDULED_CANCELS_PER_DAY:
        return errors.SCHEDULE_TOO_MANY
    acct.cancel_at = time_ms
    return None
