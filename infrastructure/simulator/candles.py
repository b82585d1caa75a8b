"""Candles built from the mids the venue has seen, with the simulated trades as volume.

Kept in memory only, at two resolutions so memory stays bounded: the latest 5000 one-minute
bars serve intervals below an hour, the latest 5000 hourly bars serve the longer ones. An
answer holds at most 500 rows, the oldest first, as the venue's time-range answers do
(paginate by the last open time). Fixed intervals start on multiples of their length since
the epoch, weeks on Mondays and months on the 1st (UTC).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from infrastructure.simulator.rules import DAY_MS, HOUR_MS, ZERO, wire

MINUTE_MS = 60_000
KEPT_BARS = 5000
MAX_ROWS = 500  # rows per candleSnapshot answer
MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-05 was the first Monday after the epoch

#: interval -> length in ms (None: calendar month)
INTERVALS: dict[str, int | None] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    "1M": None,
}


@dataclass
class Bar:
    t: int
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    v: Decimal = ZERO  # coins traded
    n: int = 0  # trades
    ntl: Decimal = ZERO  # USD traded

    def price(self, px: Decimal) -> None:
        self.h = max(self.h, px)
        self.low = min(self.low, px)
        self.c = px

    def merge(self, other: Bar) -> None:
        self.h = max(self.h, other.h)
        self.low = min(self.low, other.low)
        self.c = other.c
        self.v += other.v
        self.n += other.n
        self.ntl += other.ntl


def bucket(t: int, interval: str) -> tuple[int, int]:
    """(open time, close time) in ms of the ``interval`` candle holding ``t``."""
    length = INTERVALS[interval]
    if length is None:
        moment = datetime.fromtimestamp(t / 1000, UTC)
        start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
        return int(start.timestamp() * 1000), int(following.timestamp() * 1000) - 1
    offset = MONDAY_OFFSET_MS if interval == "1w" else 0
    start_ms = t - (t - offset) % length
    return start_ms, start_ms + length - 1


class CandleBars:
    def __init__(self, kept: int = KEPT_BARS) -> None:
        self._kept = kept
        self._minutes: dict[str, OrderedDict[int, Bar]] = {}
        self._hours: dict[str, OrderedDict[int, Bar]] = {}

    def _bars(self, coin: str, now_ms: int, px: Decimal) -> list[Bar]:
        out = []
        for series, length in ((self._minutes, MINUTE_MS), (self._hours, HOUR_MS)):
            bars = series.setdefault(coin, OrderedDict())
            t = now_ms - now_ms % length
            bar = bars.get(t)
            if bar is None:
                bar = bars[t] = Bar(t, px, px, px, px)
                if len(bars) > self._kept:
                    bars.popitem(last=False)
            out.append(bar)
        return out

    def on_price(self, coin: str, now_ms: int, px: Decimal) -> None:
        for bar in self._bars(coin, now_ms, px):
            bar.price(px)

    def on_prices(self, coin: str, points: Sequence[tuple[int, Decimal]]) -> None:
        """``on_price`` for each ``(now_ms, px)`` in turn (times never going back), folded:
        the points that fall in one bar change it once (its high, low and close), so a
        backtest's quiet minutes, a few price updates each, cost a bar each rather than an
        update each. The bars come out as ``on_price`` leaves them."""
        minutes = self._minutes.setdefault(coin, OrderedDict())
        hours = self._hours.setdefault(coin, OrderedDict())
        kept = self._kept
        hour_t = -1
        hour_bar: Bar | None = None
        n = len(points)
        i = 0
        while i < n:
            now_ms, first = points[i]
            t = now_ms - now_ms % MINUTE_MS
            j = i + 1
            while j < n and points[j][0] - t < MINUTE_MS:
                j += 1
            if j == i + 1:
                high = low = first
            else:
                run = [px for _, px in points[i:j]]
                high, low = max(run), min(run)
            close = points[j - 1][1]
            bar = minutes.get(t)
            if bar is None:
                bar = minutes[t] = Bar(t, first, high, low, close)
                if len(minutes) > kept:
                    minutes.popitem(last=False)
            else:
                if high > bar.h:
                    bar.h = high
                if low < bar.low:
                    bar.low = low
                bar.c = close
            h = t - t % HOUR_MS
            if h != hour_t or hour_bar is None:
                hour_t = h
                hour_bar = hours.get(h)
                if hour_bar is None:
                    hour_bar = hours[h] = Bar(h, first, first, first, first)
                    if len(hours) > kept:
                        hours.popitem(last=False)
            if high > hour_bar.h:
                hour_bar.h = high
            if low < hour_bar.low:
                hour_bar.low = low
            hour_bar.c = close
            i = j

    def on_trade(self, coin: str, now_ms: int, sz: Decimal, px: Decimal) -> None:
        for bar in self._bars(coin, now_ms, px):
            bar.v += sz
            bar.n += 1
            bar.ntl += sz * px

    def snapshot(
        self, coin: str, interval: str, start_ms: int, end_ms: int
    ) -> list[dict[str, Any]]:
        length = INTERVALS[interval]
        fine = length is not None and length < HOUR_MS
        source = (self._minutes if fine else self._hours).get(coin, OrderedDict())
        merged: dict[int, tuple[int, Bar]] = {}
        for bar in source.values():
            t, close = bucket(bar.t, interval)
            if close < start_ms or t > end_ms:
                continue
            held = merged.get(t)
            if held is None:
                merged[t] = (close, Bar(t, bar.o, bar.h, bar.low, bar.c, bar.v, bar.n, bar.ntl))
            else:
                held[1].merge(bar)
        rows = [
            {
                "t": t,
                "T": close,
                "s": coin,
                "i": interval,
                "o": wire(bar.o),
                "c": wire(bar.c),
                "h": wire(bar.h),
                "l": wire(bar.low),
                "v": wire(bar.v),
                "n": bar.n,
            }
            for t, (close, bar) in sorted(merged.items())
        ]
        return rows[-KEPT_BARS:][:MAX_ROWS]

    def day(self, coin: str, now_ms: int) -> tuple[Decimal | None, Decimal, Decimal]:
        """(price 24 h ago, coins traded in 24 h, USD traded in 24 h)."""
        since = now_ms - DAY_MS
        prev: Decimal | None = None
        base = ntl = ZERO
        for bar in self._minutes.get(coin, OrderedDict()).values():
            if bar.t + MINUTE_MS <= since:
                prev = bar.c
                continue
            if prev is None:
                prev = bar.o
            base += bar.v
            ntl += bar.ntl
        return prev, base, ntl
