"""A market provider that replays a tape point-in-time.

At as-of time ``t`` it serves only data stamped at or before ``t``: the newest whole
minute for prices, the newest *closed* 3-minute and 4-hour candles for indicators. Any
attempt to serve later data raises :class:`LookAheadError` instead.

Snapshots are assembled by :mod:`infrastructure.market.snapshot`, as the live Hyperliquid
provider's are, so a prompt's numbers mean the same in a replay and live. The tape's
hourly funding rate is also offered (``funding_rates``), so the in-process simulator
settles the funding the prompt showed, and each minute's OHLC path (``minute_path``), so
the simulator sets off stops, targets, resting limits and liquidations where the candle
reached them, not only at its close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import numpy as np

from application.ports import (
    CoinSnapshot,
    LookAheadError,
    MarketSnapshot,
    MinutePath,
    MissingData,
)
from infrastructure.market.snapshot import (
    IntradayIndicators,
    LongTermIndicators,
    Quote,
    assemble,
    intraday_indicators,
    long_term_indicators,
)
from infrastructure.market.synthetic import Array, Candles, CoinTape, aggregate


class Tape(Protocol):
    """Minutes per coin from ``start`` (generated: ``SyntheticTape``; recorded:
    ``HistoryTape``)."""

    start: datetime
    coins: dict[str, CoinTape]

    @property
    def end(self) -> datetime: ...


OI_AVERAGE_MINUTES = 24 * 60
INTRADAY_S = 3 * 60
LONG_TERM_S = 4 * 60 * 60


@dataclass(frozen=True)
class _Prepared:
    """Every series a snapshot needs, computed once (indicators are causal, so the value at
    a candle never depends on later candles)."""

    tape: CoinTape
    intraday_candles: Candles
    intraday: IntradayIndicators
    long_term_candles: Candles
    long_term: LongTermIndicators
    oi: Array
    oi_sum: Array  # cumulative, for window means in O(1)


def _prepare(tape: CoinTape) -> _Prepared:
    intraday = aggregate(tape.minutes, INTRADAY_S)
    lt = aggregate(tape.minutes, LONG_TERM_S)
    return _Prepared(
        tape=tape,
        intraday_candles=intraday,
        intraday=intraday_indicators(intraday.close),
        long_term_candles=lt,
        long_term=long_term_indicators(lt.high, lt.low, lt.close, lt.volume),
        oi=np.round(tape.open_interest, 2),
        oi_sum=np.concatenate(([0.0], np.cumsum(tape.open_interest))),
    )


def as_price(value: float) -> Decimal:
    """A tape price as served: 6 significant figures, as a venue would quote it."""
    return Decimal(f"{value:.6g}")


def as_rate(value: float) -> Decimal:
    """A tape funding rate as served."""
    return Decimal(f"{value:.6g}")


_decimal = as_price


def ohlc_path(open_: float, high: float, low: float, close: float) -> tuple[float, ...]:
    """The prices a minute candle is taken to have gone through, in order: the open, the
    extreme nearer the open, the other extreme, the close.

    The usual OHLC path assumption (a candle does not say which extreme came first; the
    nearer one is the likelier first). A tie (the open as far from both) goes by the
    candle's direction, as a bar is usually drawn: a rising minute (close at or above the
    open) dips to its low first, a falling one touches its high first."""
    to_low, to_high = open_ - low, high - open_
    low_first = to_low < to_high or (to_low == to_high and close >= open_)
    first, second = (low, high) if low_first else (high, low)
    return (open_, first, second, close)


class ReplayMarket:
    """``MarketData`` over a :class:`SyntheticTape` (or any tape of the same shape)."""

    def __init__(self, tape: Tape, *, max_staleness_s: float = 90.0) -> None:
        self.tape = tape
        self.max_staleness_s = max_staleness_s
        self._prepared = {coin: _prepare(t) for coin, t in tape.coins.items()}

    def _elapsed(self, as_of: datetime) -> float:
        return (as_of - self.tape.start).total_seconds()

    def _guard(self, stamp_s: float, as_of_s: float, what: str) -> None:
        if stamp_s > as_of_s:
            raise LookAheadError(f"{what} is stamped {stamp_s - as_of_s:.0f}s after the as-of time")

    def _minute(self, coin: str, as_of: datetime) -> tuple[_Prepared, int, float]:
        prepared = self._prepared.get(coin)
        if prepared is None:
            raise MissingData(f"the replay tape has no {coin}")
        elapsed = self._elapsed(as_of)
        minute = int(elapsed // 60) - 1  # newest minute whose close is at or before as_of
        if minute < 0:
            raise MissingData(f"{coin}: as-of time {as_of.isoformat()} is before the tape")
        if minute >= len(prepared.tape.minutes):
            raise MissingData(
                f"{coin}: the replay tape ends at {self.tape.end.isoformat()}"
                f" (as-of {as_of.isoformat()})"
            )
        self._guard((minute + 1) * 60, elapsed, f"{coin} minute {minute}")
        return prepared, minute, elapsed

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        result = {}
        for coin in coins:
            prepared, minute, _ = self._minute(coin, as_of)
            result[coin] = _decimal(float(prepared.tape.minutes.close[minute]))
        return result

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        result = {}
        for coin in coins:
            prepared, minute, _ = self._minute(coin, as_of)
            result[coin] = as_rate(float(prepared.tape.funding_hourly[minute]))
        return result

    def _window(self, coin: str, first: datetime, count: int) -> tuple[_Prepared, int, int]:
        """The coin's tape and the minutes [start, end) read at the ``count`` as-of times
        one minute apart from ``first``; MissingData past the tape's end."""
        prepared, minute, _ = self._minute(coin, first)
        end = minute + count
        if end > len(prepared.tape.minutes):
            raise MissingData(
                f"{coin}: the replay tape ends at {self.tape.end.isoformat()}"
                f" ({count} minutes from {first.isoformat()})"
            )
        return prepared, minute, end

    def minute_ranges(
        self, coins: Sequence[str], first: datetime, count: int
    ) -> dict[str, tuple[Array, Array, Array, Array]]:
        """For the ``count`` as-of times one minute apart from ``first``: each coin's low,
        high and close of the minute its mid is read from, and the funding rate in force.

        What the simulator needs to settle the coming minutes in bulk (``mids`` and
        ``funding_rates`` at each time are the closes and rates, as decimals); no trader
        ever sees these before their time."""
        result = {}
        for coin in coins:
            prepared, minute, end = self._window(coin, first, count)
            minutes = prepared.tape.minutes
            result[coin] = (
                minutes.low[minute:end],
                minutes.high[minute:end],
                minutes.close[minute:end],
                prepared.tape.funding_hourly[minute:end],
            )
        return result

    async def minute_path(self, coins: Sequence[str], as_of: datetime) -> MinutePath | None:
        """The path (``ohlc_path``) of the newest minute closed at ``as_of``: only that
        minute's candle, stamped at its close, at or before ``as_of``."""
        if not coins:
            return None
        minute = -1
        for coin in coins:
            minute = self._minute(coin, as_of)[1]
        closes_at = self.tape.start + timedelta(seconds=(minute + 1) * 60)
        return self.minute_paths(coins, closes_at, 1)[0]

    def minute_paths(self, coins: Sequence[str], first: datetime, count: int) -> list[MinutePath]:
        """``minute_path`` at the ``count`` as-of times one minute apart from ``first``
        (what the simulator takes in bulk for the quiet minutes of a backtest)."""
        columns = []
        closes_at = []
        for coin in coins:
            prepared, minute, end = self._window(coin, first, count)
            minutes = prepared.tape.minutes
            closes_at = [
                self.tape.start + timedelta(seconds=(m + 1) * 60) for m in range(minute, end)
            ]
            columns.append(
                (
                    coin,
                    minutes.open[minute:end].tolist(),
                    minutes.high[minute:end].tolist(),
                    minutes.low[minute:end].tolist(),
                    minutes.close[minute:end].tolist(),
                )
            )
        paths = []
        for j, at in enumerate(closes_at):
            points: list[dict[str, Decimal]] = [{}, {}, {}, {}]
            for coin, opens, highs, lows, closes in columns:
                walk = ohlc_path(opens[j], highs[j], lows[j], closes[j])
                for point, price in zip(points, walk, strict=True):
                    point[coin] = as_price(price)
            paths.append(MinutePath(at, tuple(points)))
        return paths

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        return MarketSnapshot(as_of=as_of, coins={coin: self._coin(coin, as_of) for coin in coins})

    def _coin(self, coin: str, as_of: datetime) -> CoinSnapshot:
        p, minute, elapsed = self._minute(coin, as_of)
        i = p.intraday_candles.last_closed(elapsed)
        k = p.long_term_candles.last_closed(elapsed)
        if i >= 0:
            self._guard((i + 1) * INTRADAY_S, elapsed, f"{coin} 3m candle {i}")
        if k >= 0:
            self._guard((k + 1) * LONG_TERM_S, elapsed, f"{coin} 4h candle {k}")
        oi_from = max(0, minute - OI_AVERAGE_MINUTES + 1)
        oi_average = (p.oi_sum[minute + 1] - p.oi_sum[oi_from]) / (minute + 1 - oi_from)
        quote = Quote(
            price=_decimal(float(p.tape.minutes.close[minute])),
            data_time=self.tape.start + timedelta(seconds=(minute + 1) * 60),
            open_interest_latest=float(p.oi[minute]),
            open_interest_average=float(oi_average),
            funding_rate=float(p.tape.funding_hourly[minute]),
        )
        try:
            return assemble(coin, p.intraday, i, p.long_term, k, quote)
        except MissingData as exc:
            raise MissingData(f"{exc} at {as_of.isoformat()}") from None
