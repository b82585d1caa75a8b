"""Price updates in bulk, for a backtest between decisions.

A backtest walks each minute's price path on the venue: a few price updates a minute
(``sweep.advance``; ``SimulatedHyperliquid.mark_path``), each within the minute's low and
high, so the bounds below hold per minute (``quiet_updates`` counts minutes, ``times_ms``
their closes; ``take_quiet`` takes each of their updates, in order). Between two
decisions almost all of them only take the prices: nothing fills, fires, expires or is
liquidated. ``quiet_updates`` bounds how many of the coming updates are sure to be like
that, from each update's price range (the candle's low and high, widened by ``SLACK`` for
the rounding of the mid); ``take_quiet`` then applies them exactly as ``advance`` would
(the prices, the venue's candles, the book's epoch, the venue time) without the checks they
are proven not to need. An update that crosses a funding hour is never taken here: it goes
through ``advance`` (the caller's job), so funding is settled at the hour, with the hour's
oracle and rate, as minute by minute.

The bound is conservative, never exact: an update it stops at may still turn out quiet
(the caller then runs it in full and asks again).

* a trigger order (not yet triggered, not waiting for its parent) may fire at the first
  update whose range reaches its trigger price on the side it fires on;
* a resting limit order (``Gtc``, ``Alo``) may fill at the first update whose range crosses
  its limit price;
* a scheduled cancel runs at the first update at or after its time;
* an account may be liquidated at the first update after which the worst marks seen so far
  (the lowest low for a long, the highest high for a short: value minus maintenance margin
  moves the same way as the price for a long and against it for a short) take it below its
  maintenance margin, with room for one hour's funding at ``funding_rate`` on every
  position;
* anything else (an order of another kind, a coin without prices) stops at once.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np

from infrastructure.simulator.margin import isolated_margin, maintenance, mark_of, summarize
from infrastructure.simulator.rules import HOUR_MS
from infrastructure.simulator.state import Account
from infrastructure.simulator.trading import Venue

#: Relative room around a candle's range for the mid's rounding (6 significant figures).
SLACK = 1e-5

Prices = Mapping[str, np.ndarray]


def quiet_updates(
    venue: Venue,
    times_ms: Sequence[int],
    lows: Prices,
    highs: Prices,
    funding_rate: Decimal,
) -> int:
    """How many of the updates at ``times_ms`` (each coin's price somewhere in
    ``[lows[coin][i], highs[coin][i]]`` at update ``i``) set nothing off; ``funding_rate``:
    the largest hourly rate (absolute) that may be paid meanwhile (0: no hour crossed)."""
    n = len(times_ms)
    limit = n
    core = venue.core
    for user in sorted(core.accounts):
        acct = core.accounts[user]
        if acct.cancel_at is not None:
            limit = min(limit, bisect_left(times_ms, acct.cancel_at))
        for order in acct.open_orders.values():
            if order.waiting:
                continue  # it can only start with its parent's fill, bounded on its own
            low, high = lows.get(order.coin), highs.get(order.coin)
            if low is None or high is None:
                return 0
            if order.trigger is not None and not order.triggered:
                px = float(order.trigger.px)
                if order.trigger.fires_above(order.is_buy):
                    hits = high * (1 + SLACK) >= px
                else:
                    hits = low * (1 - SLACK) <= px
            elif order.tif in ("Gtc", "Alo"):
                px = float(order.limit_px)
                hits = low * (1 - SLACK) < px if order.is_buy else high * (1 + SLACK) > px
            else:
                return 0
            limit = min(limit, _first(hits[:limit]))
        if acct.positions and limit:
            limit = _solvent_prefix(venue, acct, lows, highs, limit, funding_rate)
    return limit


def _first(hits: np.ndarray) -> int:
    return int(np.argmax(hits)) if hits.any() else len(hits)


def _solvent_prefix(
    venue: Venue,
    acct: Account,
    lows: Prices,
    highs: Prices,
    limit: int,
    funding_rate: Decimal,
) -> int:
    """The longest prefix (at most ``limit`` updates) over which ``acct`` cannot be
    liquidated (its worst case only worsens as the prefix grows: bisect)."""
    worst: dict[str, np.ndarray] = {}
    for coin, pos in acct.positions.items():
        low, high = lows.get(coin), highs.get(coin)
        if low is None or high is None:
            return 0
        if pos.szi > 0:
            worst[coin] = np.minimum.accumulate(low[:limit]) * (1 - SLACK)
        else:
            worst[coin] = np.maximum.accumulate(high[:limit]) * (1 + SLACK)
    base = venue.marks()

    def solvent(k: int) -> bool:  # after the first k updates
        marks = dict(base)
        for coin, series in worst.items():
            marks[coin] = Decimal(repr(float(series[k - 1])))
        return _solvent(venue, acct, marks, funding_rate)

    lo, hi = 0, limit  # solvent(lo) holds (k = 0: now, already checked by the last update)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if solvent(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _solvent(
    venue: Venue, acct: Account, marks: Mapping[str, Decimal], funding_rate: Decimal
) -> bool:
    """``sweep.liquidate`` would leave ``acct`` alone at ``marks``, even after an hour's
    funding at ``funding_rate`` on every position."""
    cross_room = Decimal(0)
    held_cross = False
    for coin, pos in acct.positions.items():
        mark = mark_of(marks, coin, pos)
        funding = abs(pos.szi) * mark * funding_rate
        if pos.isolated:
            if isolated_margin(pos, mark) - funding < maintenance(pos, mark, venue.by_coin[coin]):
                return False
        else:
            held_cross = True
            cross_room += funding
    if not held_cross:
        return True
    summary = summarize(acct, marks, venue.by_coin)
    return summary.cross_value - cross_room >= summary.cross_mm


def take_quiet(
    venue: Venue,
    updates: Sequence[tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]],
) -> None:
    """Apply price updates ``(now_ms, mids, funding rates)`` that ``quiet_updates`` proved
    set nothing off, as ``sweep.advance`` applies them (mark and oracle are the mid). The
    book's taken sizes are left: the next full update starts a fresh book anyway.

    What the updates leave is what the last of them leaves (each coin's last price and
    rate, the latest time), but the venue's candles, which see every price: each coin's
    prices go to them in one fold (``CandleBars.on_prices``), not one call an update.

    Raises ``ValueError``, before taking any, when an update lies at or past the next
    funding hour (``advance`` must settle it)."""
    if not updates:
        return
    core = venue.core
    latest = max(now_ms for now_ms, _, _ in updates)
    if core.funding_hour is None or latest >= core.funding_hour + HOUR_MS:
        raise ValueError(
            f"an update at {latest} crosses a funding hour (last settled: "
            f"{core.funding_hour}): it must go through advance"
        )
    now, points, last_rate = _columns(updates, core.now_ms, tuple(venue.by_coin))
    for coin in points:
        venue.market(coin)  # the entry an update makes, priced or not
    core.now_ms = now
    for coin, series in points.items():
        if not series:
            continue
        mid = series[-1][1]
        prices = venue.market(coin)
        prices.mid = prices.mark = prices.oracle = mid
        venue.candles.on_prices(coin, series)
    for coin, rate in last_rate.items():
        venue.market(coin).funding_rate = rate
    core.epoch += len(updates)


Columns = tuple[int, dict[str, list[tuple[int, Decimal]]], dict[str, Decimal]]

#: The last ``_columns`` (its arguments and answer): a backtest gives every venue of a
#: market the same updates, each venue at the same time.
_last_columns: tuple[object, int, tuple[str, ...], Columns] | None = None


def _columns(
    updates: Sequence[tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]],
    now: int,
    listed: tuple[str, ...],
) -> Columns:
    """What ``updates`` leave on a venue at time ``now`` listing the coins ``listed``: its
    time after them, each listed coin's prices with their venue times (in the order the
    coins first appear), each coin's last funding rate. Read only by the caller."""
    global _last_columns
    last = _last_columns
    if last is not None and last[0] is updates and last[1] == now and last[2] == listed:
        return last[3]  # a tuple: the same updates still
    start = now
    points: dict[str, list[tuple[int, Decimal]]] = {}
    last_rate: dict[str, Decimal] = {}
    for now_ms, mids, rates in updates:
        if now_ms > now:
            now = now_ms
        for coin, mid in mids.items():
            series = points.get(coin)
            if series is None:
                if coin not in listed:
                    continue
                series = points[coin] = []
            if mid > 0:
                series.append((now, mid))
            if coin in rates:
                last_rate[coin] = rates[coin]
    answer = (now, points, last_rate)
    _last_columns = (updates, start, listed, answer) if isinstance(updates, tuple) else None
    return answer
