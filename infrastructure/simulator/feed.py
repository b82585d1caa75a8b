"""A wall-clock price feed for ``nof0 sim serve``: a seeded synthetic tape played in real time.

:class:`SyntheticFeed` lays the one-minute bars of
:class:`~infrastructure.market.synthetic.SyntheticTape` on the calendar so that the anchor
minute (by default the wall-clock minute the feed was built in) trades at each coin's profile
price; the ``history_days`` before it are history. At wall time ``t`` the price is the
straight line from the open to the close of the minute holding ``t`` (so it reaches the
minute's close at the minute's end, and the next minute opens there): deterministic, and
continuous for the simulator's triggers.

The tape is generated in one-week segments, the next one when time gets there; each segment
has its own seed (derived from the feed's) and is scaled to open at the previous close, so a
feed can run for as long as the server does and a restarted server with the same seed and
anchor sees the same prices.

The candle source answers ``candleSnapshot`` for the venue: candles that have opened by the
venue's time, the last one still forming (its minute in progress counts up to ``now``), in
Hyperliquid's row shape. Only the latest 5000 candles of an interval exist, and one answer
holds at most 500 rows, the oldest first (paginate by the last open time).

:class:`FeedThread` pushes the feed's prices and funding rates into the venue every period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from infrastructure.market.synthetic import DEFAULT_PROFILE, PROFILES, SyntheticTape
from infrastructure.simulator.candles import INTERVALS, bucket
from infrastructure.simulator.gateway import SimGateway
from infrastructure.simulator.rules import DAY_MS, wire

log = logging.getLogger("nof0.sim")

MINUTE_MS = 60_000
SEGMENT_MINUTES = 7 * 1440
KEPT_CANDLES = 5000
MAX_ROWS = 500
PRICE_FIGURES = 6  # mids print like the venue's, which carry a half tick
RATE_FIGURES = 6
TRADES_PER_MINUTE = 30  # the mean trade count of a one-minute bar

Array = NDArray[np.float64]


def significant(value: float, figures: int) -> Decimal:
    """``value`` rounded to ``figures`` significant digits, as an exact Decimal."""
    exact = Decimal(repr(float(value)))
    if exact.is_zero() or not exact.is_finite():
        return Decimal(0)
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - figures + 1))


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Series:
    """One coin's minutes since the feed's first minute."""

    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array
    trades: NDArray[np.int64]
    funding: Array

    def extended(self, other: _Series) -> _Series:
        return _Series(
            *(
                np.concatenate((mine, theirs))
                for mine, theirs in zip(self.columns(), other.columns(), strict=True)
            )
        )

    def columns(self) -> tuple[Any, ...]:
        return (
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.trades,
            self.funding,
        )


class SyntheticFeed:
    def __init__(
        self,
        coins: Sequence[str],
        seed: int,
        *,
        history_days: int = 14,
        start_ms: int | None = None,
    ) -> None:
        """``start_ms``: the anchor, the moment the tape's "now" is (default: the wall clock)."""
        if seed < 0:
            raise ValueError("the feed's seed must be a non-negative integer")
        if history_days < 0:
            raise ValueError("history_days must not be negative")
        anchor = wall_ms() if start_ms is None else start_ms
        self.coins = tuple(coins)
        self.seed = seed
        self.anchor_ms = anchor - anchor % MINUTE_MS
        first = self.anchor_ms - history_days * DAY_MS
        self.first_ms = first - first % DAY_MS  # whole days: every interval's buckets align
        anchor_minute = (self.anchor_ms - self.first_ms) // MINUTE_MS
        self._lock = threading.Lock()
        self._segments = 1
        self._series = self._generate(
            self.first_ms, anchor_minute + SEGMENT_MINUTES, seed, anchor_minute
        )

    # -- the tape -----------------------------------------------------------------------------

    @property
    def minutes(self) -> int:
        return len(next(iter(self._series.values())).close) if self._series else 0

    def _generate(self, start_ms: int, minutes: int, seed: int, anchor: int) -> dict[str, _Series]:
        start = datetime.fromtimestamp(start_ms / 1000, UTC)
        tape = SyntheticTape(self.coins, start, minutes, seed, anchor_minute=anchor)
        series = {}
        for coin, coin_tape in tape.coins.items():
            bars = coin_tape.minutes
            typical = PROFILES.get(coin, DEFAULT_PROFILE).minute_volume
            trades = np.maximum(1, np.rint(bars.volume / typical * TRADES_PER_MINUTE))
            series[coin] = _Series(
                bars.open,
                bars.high,
                bars.low,
                bars.close,
                bars.volume,
                trades.astype(np.int64),
                coin_tape.funding_hourly,
            )
        return series

    def _covering(self, minute: int) -> dict[str, _Series]:
        """The series, extended until ``minute`` exists."""
        with self._lock:
            while minute >= self.minutes:
                start = self.first_ms + self.minutes * MINUTE_MS
                seed = self.seed * 4099 + self._segments  # a fresh path per week, reproducible
                fresh = self._generate(start, SEGMENT_MINUTES, seed, 0)
                for coin, tail in fresh.items():
                    head = self._series[coin]
                    scale = float(head.close[-1] / tail.open[0])  # continue where it left off
                    for column in (tail.open, tail.high, tail.low, tail.close):
                        column *= scale
                    self._series[coin] = head.extended(tail)
                self._segments += 1
            return dict(self._series)

    def _position(self, now_ms: int) -> tuple[int, float]:
        """(index of the minute holding ``now_ms``, fraction of it elapsed)."""
        elapsed = max(0, now_ms - self.first_ms)
        return elapsed // MINUTE_MS, (elapsed % MINUTE_MS) / MINUTE_MS

    @staticmethod
    def _price(series: _Series, minute: int, fraction: float) -> float:
        opened = float(series.open[minute])
        return opened + (float(series.close[minute]) - opened) * fraction

    # -- what the venue is fed ----------------------------------------------------------------

    def mids(self, now_ms: int) -> dict[str, Decimal]:
        minute, fraction = self._position(now_ms)
        series = self._covering(minute)
        return {
            coin: significant(self._price(one, minute, fraction), PRICE_FIGURES)
            for coin, one in series.items()
        }

    def funding_rates(self, now_ms: int) -> dict[str, Decimal]:
        """The hourly rate in force at ``now_ms``, per coin."""
        minute, _ = self._position(now_ms)
        series = self._covering(minute)
        return {
            coin: significant(float(one.funding[minute]), RATE_FIGURES)
            for coin, one in series.items()
        }

    def candles(
        self, coin: str, interval: str, start_ms: int, end_ms: int, now_ms: int
    ) -> list[dict[str, Any]]:
        """A :data:`~infrastructure.simulator.info.CandleSource`."""
        if coin not in self.coins or interval not in INTERVALS or now_ms < self.first_ms:
            return []
        now_minute, fraction = self._position(now_ms)
        one = self._covering(now_minute)[coin]
        forming_px = self._price(one, now_minute, fraction)
        newest_open, _ = bucket(now_ms, interval)
        length = INTERVALS[interval]
        oldest = self.first_ms if length is None else newest_open - (KEPT_CANDLES - 1) * length
        t, _ = bucket(max(start_ms, oldest, self.first_ms), interval)
        rows: list[dict[str, Any]] = []
        while t <= min(end_ms, now_ms) and len(rows) < MAX_ROWS:
            _, close_ms = bucket(t, interval)
            lo = max(0, (t - self.first_ms) // MINUTE_MS)
            hi = min((close_ms + 1 - self.first_ms) // MINUTE_MS, now_minute)  # closed minutes
            rows.append(self._row(one, coin, interval, t, close_ms, lo, hi, forming_px, fraction))
            t = close_ms + 1
        return rows

    def _row(
        self,
        one: _Series,
        coin: str,
        interval: str,
        t: int,
        close_ms: int,
        lo: int,
        hi: int,
        forming_px: float,
        fraction: float,
    ) -> dict[str, Any]:
        """Bucket ``[t, close_ms]``: closed minutes ``lo:hi`` plus, if the bucket holds it, the
        minute in progress (``hi``) up to its current price."""
        forming = close_ms + 1 - self.first_ms > hi * MINUTE_MS  # the bucket is not over
        high, low = -np.inf, np.inf
        volume, trades = 0.0, 0
        close = 0.0
        if hi > lo:
            high, low = float(np.max(one.high[lo:hi])), float(np.min(one.low[lo:hi]))
            volume, trades = float(np.sum(one.volume[lo:hi])), int(np.sum(one.trades[lo:hi]))
            close = float(one.close[hi - 1])
        if forming:
            opened = float(one.open[hi])
            high, low = max(high, opened, forming_px), min(low, opened, forming_px)
            volume += float(one.volume[hi]) * fraction
            trades += round(float(one.trades[hi]) * fraction)
            close = forming_px
        return {
            "t": t,
            "T": close_ms,
            "s": coin,
            "i": interval,
            "o": wire(significant(float(one.open[lo]), PRICE_FIGURES)),
            "c": wire(significant(close, PRICE_FIGURES)),
            "h": wire(significant(high, PRICE_FIGURES)),
            "l": wire(significant(low, PRICE_FIGURES)),
            "v": wire(significant(volume, 8)),
            "n": trades,
        }


class FeedThread:
    """Calls ``gateway.advance(now, mids, funding_rates=…)`` every ``period_s`` until stopped.

    ``now`` is the wall clock, or the venue's time if something moved it further (the venue
    never goes back)."""

    def __init__(
        self,
        gateway: SimGateway,
        feed: SyntheticFeed,
        period_s: float = 1.0,
        *,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.gateway = gateway
        self.feed = feed
        self.period_s = period_s
        self._clock_ms = clock_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def tick(self) -> int:
        now = max(int(self._clock_ms()), self.gateway.now_ms)
        self.gateway.advance(now, self.feed.mids(now), funding_rates=self.feed.funding_rates(now))
        self.ticks += 1
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.tick()
            except Exception:
                log.exception("the price feed failed; it keeps going")

    def start(self) -> None:
        """One update now (the venue has prices before anyone asks), then one per period."""
        if self._thread is not None:
            raise RuntimeError("the feed is already running")
        self.tick()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
