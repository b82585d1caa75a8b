"""/info market data: meta, asset contexts, mids, the book, candles, funding rates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from infrastructure.simulator.book import Level, available
from infrastructure.simulator.candles import INTERVALS
from infrastructure.simulator.config import SimAsset
from infrastructure.simulator.errors import InfoRequestError
from infrastructure.simulator.info_fields import (
    PX,
    Request,
    int_field,
    optional_int_field,
    text_field,
    usd,
)
from infrastructure.simulator.rules import ZERO, wire, wire_rounded
from infrastructure.simulator.state import Order
from infrastructure.simulator.sweep import current_rate
from infrastructure.simulator.trading import Venue

#: (coin, interval, start ms, end ms, venue now ms) -> rows in candleSnapshot shape
CandleSource = Callable[[str, str, int, int, int], list[dict[str, Any]]]

BOOK_DEPTH = 20
MAX_TIME_ROWS = 500  # fundingHistory rows per answer


def meta(venue: Venue, _: Request) -> dict[str, Any]:
    """Single-tier margin tables whose id is the max leverage (the venue's ids below 50)."""
    universe = []
    for asset in venue.assets:
        entry: dict[str, Any] = {
            "szDecimals": asset.sz_decimals,
            "name": asset.name,
            "maxLeverage": asset.max_leverage,
            "marginTableId": asset.max_leverage,
        }
        if asset.only_isolated:
            entry["onlyIsolated"] = True
        universe.append(entry)
    tables = sorted({asset.max_leverage for asset in venue.assets})
    return {
        "universe": universe,
        "marginTables": [
            [
                table,
                {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": table}]},
            ]
            for table in tables
        ],
        "collateralToken": 0,
    }


def _open_interest(venue: Venue, coin: str) -> Decimal:
    """Σ |szi| over the simulated accounts (their counterparty is the synthetic book)."""
    return sum(
        (abs(a.positions[coin].szi) for a in venue.core.accounts.values() if coin in a.positions),
        ZERO,
    )


def _asset_ctx(venue: Venue, asset: SimAsset) -> dict[str, Any]:
    coin = asset.name
    prices = venue.prices(coin)
    prev, base_volume, usd_volume = venue.candles.day(coin, venue.now)
    impact = venue.impact_prices(coin)
    premium = venue.premium(coin)
    mid = prices.mid
    return {
        "funding": wire(current_rate(venue, coin)),
        "openInterest": wire(_open_interest(venue, coin)),
        "prevDayPx": wire(prev if prev is not None else (mid or ZERO)),
        "dayNtlVlm": usd(usd_volume),
        "premium": None if premium is None else wire(premium),
        "oraclePx": wire(prices.oracle or ZERO),
        "markPx": wire(prices.mark or ZERO),
        "midPx": None if mid is None else wire(mid),
        "impactPxs": None if impact is None else [wire_rounded(px, PX) for px in impact],
        "dayBaseVlm": wire(base_volume),
    }


def meta_and_asset_ctxs(venue: Venue, request: Request) -> list[Any]:
    return [meta(venue, request), [_asset_ctx(venue, asset) for asset in venue.assets]]


def all_mids(venue: Venue, _: Request) -> dict[str, str]:
    return {
        asset.name: wire(prices.mid)
        for asset in venue.assets
        if (prices := venue.core.markets.get(asset.name)) is not None and prices.mid is not None
    }


def _merged(synthetic: list[Level], users: list[Order], *, bids: bool) -> list[dict[str, Any]]:
    depth: dict[Decimal, list[Any]] = {level.px: [level.sz, level.n] for level in synthetic}
    for order in users:
        held = depth.setdefault(order.limit_px, [ZERO, 0])
        held[0] += order.sz
        held[1] += 1
    ordered = sorted(depth.items(), key=lambda item: item[0], reverse=bids)[:BOOK_DEPTH]
    return [{"px": wire(px), "sz": wire(sz), "n": n} for px, (sz, n) in ordered]


def l2_book(venue: Venue, request: Request) -> dict[str, Any] | None:
    coin = text_field(request, "coin")
    if coin not in venue.by_coin:
        return None
    book = venue.book(coin)
    prices = venue.prices(coin)
    resting = [
        order
        for acct in venue.core.accounts.values()
        for order in acct.open_orders.values()
        if order.coin == coin and order.tif in ("Gtc", "Alo")
    ]
    bids = available(book.bids, prices.taken_bids) if book is not None else []
    asks = available(book.asks, prices.taken_asks) if book is not None else []
    return {
        "coin": coin,
        "time": venue.now,
        "levels": [
            _merged(bids, [o for o in resting if o.is_buy], bids=True),
            _merged(asks, [o for o in resting if not o.is_buy], bids=False),
        ],
    }


def candle_snapshot(
    venue: Venue, request: Request, source: CandleSource | None
) -> list[dict[str, Any]]:
    req = request.get("req")
    if not isinstance(req, Mapping):
        raise InfoRequestError()
    coin = text_field(req, "coin")
    interval = text_field(req, "interval")
    if interval not in INTERVALS:
        raise InfoRequestError()
    start = int_field(req, "startTime")
    end = optional_int_field(req, "endTime")
    end = venue.now if end is None else end
    if source is not None:
        return source(coin, interval, start, end, venue.now)
    return venue.candles.snapshot(coin, interval, start, end)


def funding_history(venue: Venue, request: Request) -> list[dict[str, Any]]:
    coin = text_field(request, "coin")
    start = int_field(request, "startTime")
    end = optional_int_field(request, "endTime")
    rows = [
        {
            "coin": row.coin,
            "fundingRate": wire(row.rate),
            "premium": wire(row.premium),
            "time": row.time,
        }
        for row in venue.journal.rates.get(coin, ())
        if row.time >= start and (end is None or row.time <= end)
    ]
    return rows[:MAX_TIME_ROWS]


def spot_meta(_venue: Venue, _: Request) -> dict[str, Any]:
    return {"universe": [], "tokens": []}
