"""What a price update sets off, in Hyperliquid's order: funding, resting fills, triggers,
scheduled cancels, liquidations.

* Funding settles at every whole hour boundary crossed since the last settlement, each with
  the oracle price and rate known at this update (a multi-hour jump pays every hour at the
  current values); the payment is ``−szi × oracle × rate`` rounded to micro-dollars, booked
  where the position's margin lives. Rates are capped at ±4 % per hour.
* Liquidation is checked on the mark: cross positions all go when the cross account value
  falls below their summed maintenance margin; an isolated one when its margin (uPnL
  included) does. A liquidated position closes whole at the mark (rounded to a valid price),
  as a taker (fee charged) through a fill carrying ``liquidation``; the account's orders on
  that asset are canceled (``liquidatedCanceled``) and whatever collateral is left stays
  with it (no partial liquidation, no backstop, no clawback: the account bears any loss).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal

from infrastructure.simulator.margin import (
    isolated_margin,
    maintenance,
    mark_of,
    pay_funding,
    summarize,
)
from infrastructure.simulator.rules import HOUR_MS, nearest_price, usdc
from infrastructure.simulator.state import Account, FundingRate, Order, UserFunding
from infrastructure.simulator.trading import Venue, trigger_hit, utc_day

MAX_HOURLY_RATE = Decimal("0.04")


def advance(
    venue: Venue,
    now_ms: int,
    mids: Mapping[str, Decimal],
    marks: Mapping[str, Decimal],
    oracles: Mapping[str, Decimal],
    funding_rates: Mapping[str, Decimal],
) -> None:
    core = venue.core
    core.now_ms = max(core.now_ms, now_ms)  # venue time never goes backwards
    for asset in venue.assets:
        coin = asset.name
        prices = venue.market(coin)
        mid = mids.get(coin)
        if mid is not None and mid > 0:
            prices.mid = mid
            venue.candles.on_price(coin, core.now_ms, mid)
        mark = marks.get(coin, mid)
        if mark is not None and mark > 0:
            prices.mark = mark
        oracle = oracles.get(coin, mid)
        if oracle is not None and oracle > 0:
            prices.oracle = oracle
        if coin in funding_rates:
            prices.funding_rate = funding_rates[coin]
        prices.taken_bids, prices.taken_asks = {}, {}  # a fresh book for every price update
    core.epoch += 1
    settle_funding(venue)
    fill_resting(venue)
    fire_triggers(venue)
    expire_scheduled_cancels(venue)
    liquidate(venue)


def current_rate(venue: Venue, coin: str) -> Decimal:
    fed = venue.prices(coin).funding_rate
    rate = venue.config.funding_rate if fed is None else fed
    return max(-MAX_HOURLY_RATE, min(MAX_HOURLY_RATE, rate))


def settle_funding(venue: Venue) -> None:
    core = venue.core
    if core.funding_hour is None:
        if core.now_ms > 0:
            core.funding_hour = core.now_ms - core.now_ms % HOUR_MS
            venue.changed = True
        return
    hour = core.funding_hour + HOUR_MS
    while hour <= core.now_ms:
        for asset in venue.assets:
            _settle_coin(venue, asset.name, hour)
        core.funding_hour = hour
        venue.changed = True
        hour += HOUR_MS


def _settle_coin(venue: Venue, coin: str, hour: int) -> None:
    oracle = venue.market(coin).oracle
    if oracle is None:
        return
    rate = current_rate(venue, coin)
    premium = venue.premium(coin)
    venue.record(
        FundingRate(venue.next_seq(), coin, hour, rate, Decimal(0) if premium is None else premium)
    )
    for user in sorted(venue.core.accounts):
        acct = venue.core.accounts[user]
        pos = acct.positions.get(coin)
        if pos is None:
            continue
        szi = pos.szi
        amount = usdc(-szi * oracle * rate)
        pay_funding(acct, coin, pos, amount)
        digest = hashlib.sha256(f"funding:{venue.config.seed}:{user}:{coin}:{hour}".encode())
        venue.record(
            UserFunding(
                venue.next_seq(), user, coin, hour, amount, szi, rate, "0x" + digest.hexdigest()
            )
        )


def _open_by_oid(acct: Account) -> list[Order]:
    return sorted(acct.open_orders.values(), key=lambda order: order.oid)


def fill_resting(venue: Venue) -> None:
    for user in sorted(venue.core.accounts):
        acct = venue.core.accounts[user]
        for order in _open_by_oid(acct):
            if order.oid in acct.open_orders and order.tif in ("Gtc", "Alo"):
                venue.fill_resting(acct, order)


def fire_triggers(venue: Venue) -> None:
    for user in sorted(venue.core.accounts):
        acct = venue.core.accounts[user]
        for order in _open_by_oid(acct):
            if (
                order.oid not in acct.open_orders
                or order.trigger is None
                or order.triggered
                or order.waiting
            ):
                continue
            mark = venue.market(order.coin).mark
            if mark is not None and trigger_hit(order, mark):
                venue.fire(acct, order)


def expire_scheduled_cancels(venue: Venue) -> None:
    now = venue.now
    for user in sorted(venue.core.accounts):
        acct = venue.core.accounts[user]
        if acct.cancel_at is None or now < acct.cancel_at:
            continue
        for order in _open_by_oid(acct):
            if order.oid in acct.open_orders:
                venue.finish(acct, order, "scheduledCancel")
        acct.cancel_at = None
        day = utc_day(now)
        acct.cancels_fired = {day: acct.cancels_fired.get(day, 0) + 1}  # only today counts
        venue.changed = True


def liquidate(venue: Venue) -> None:
    marks = venue.marks()
    for user in sorted(venue.core.accounts):
        acct = venue.core.accounts[user]
        if not acct.positions:
            continue
        held = [asset for asset in venue.assets if asset.name in acct.positions]
        cross = [a.name for a in held if not acct.positions[a.name].isolated]
        summary = summarize(acct, marks, venue.by_coin)
        if cross and summary.cross_value < summary.cross_mm:
            for coin in cross:
                _liquidate(venue, user, acct, coin, marks)
        for asset in held:
            pos = acct.positions.get(asset.name)
            if pos is None or not pos.isolated:
                continue
            mark = mark_of(marks, asset.name, pos)
            if isolated_margin(pos, mark) < maintenance(pos, mark, asset):
                _liquidate(venue, user, acct, asset.name, marks)


def _liquidate(
    venue: Venue, user: str, acct: Account, coin: str, marks: Mapping[str, Decimal]
) -> None:
    for order in _open_by_oid(acct):
        if order.coin == coin and order.oid in acct.open_orders:
            venue.finish(acct, order, "liquidatedCanceled")
    pos = acct.positions[coin]
    asset = venue.by_coin[coin]
    mark = mark_of(marks, coin, pos)
    px = nearest_price(mark, asset.sz_decimals)
    size = abs(pos.szi)
    order = Order(
        oid=venue.new_oid(),
        user=user,
        asset=venue.assets.index(asset),
        coin=coin,
        is_buy=pos.szi < 0,
        limit_px=px,
        orig_sz=size,
        sz=size,
        reduce_only=True,
        timestamp=venue.now,
        tif="LiquidationMarket",
        status_ts=venue.now,
        liquidation=True,
    )
    venue.fill(acct, order, px, size, crossed=True, liquidation_mark=mark)
    venue.finish(None, order, "filled")
    venue.after_fills(acct, order)
