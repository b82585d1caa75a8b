"""Turn closed candles and live quotes into a :class:`CoinSnapshot`.

The numbers mean what the replay provider's mean (``infrastructure.market.replay``): the
same indicator functions, the same rounding (6 decimals for indicator values, 3 for the
scalar RSIs and volumes, 2 for open interest, 6 significant figures for funding), the
same 10-point series and the same warm-up rule (44 closed 3-minute and 61 closed 4-hour
candles). Indicators are computed over the candles given, oldest → newest; the caller
decides the window (a live provider passes its last ``candle_history`` closed candles).

Two layers, so that a provider holding precomputed series (the replay) could share the
assembly: :func:`intraday_indicators` / :func:`long_term_indicators` compute the rounded
series once, :func:`assemble` picks the values at one closed candle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from application.ports import CoinSnapshot, IntradaySeries, LongTermContext, MissingData
from infrastructure.market import indicators as ta

Array = NDArray[np.float64]

SERIES_POINTS = 10
VOLUME_AVERAGE_CANDLES = 20
#: The fewest closed candles a snapshot needs (the replay's rule): MACD's first value is
#: at index 33 and the 10-point series must be all values; EMA50 on 4 hours needs 50.
INTRADAY_MIN_CANDLES = 33 + SERIES_POINTS + 1
LONG_TERM_MIN_CANDLES = 50 + SERIES_POINTS + 1


@dataclass(frozen=True)
class IntradayIndicators:
    """Rounded 3-minute series, index-aligned with the candles they came from."""

    mids: Array
    ema20: Array
    macd: Array
    rsi7: Array
    rsi14: Array


@dataclass(frozen=True)
class LongTermIndicators:
    """Rounded 4-hour series; ``volume_raw`` keeps full precision for the window mean."""

    ema20: Array
    ema50: Array
    atr3: Array
    atr14: Array
    macd: Array
    rsi14: Array
    volume: Array
    volume_raw: Array


@dataclass(frozen=True)
class Quote:
    """The live part of a snapshot (what the candles do not say)."""

    price: Decimal
    data_time: datetime
    open_interest_latest: float
    open_interest_average: float
    funding_rate: float
    mark_price: Decimal | None = None
    oracle_price: Decimal | None = None


def intraday_indicators(close: Array) -> IntradayIndicators:
    c = np.asarray(close, dtype=np.float64)
    return IntradayIndicators(
        mids=np.round(c, 6),
        ema20=np.round(ta.ema(c, 20), 6),
        macd=np.round(ta.macd(c)[0], 6),
        rsi7=np.round(ta.rsi(c, 7), 6),
        rsi14=np.round(ta.rsi(c, 14), 6),
    )


def long_term_indicators(
    high: Array, low: Array, close: Array, volume: Array
) -> LongTermIndicators:
    c = np.asarray(close, dtype=np.float64)
    v = np.asarray(volume, dtype=np.float64)
    return LongTermIndicators(
        ema20=np.round(ta.ema(c, 20), 6),
        ema50=np.round(ta.ema(c, 50), 6),
        atr3=np.round(ta.atr(high, low, c, 3), 6),
        atr14=np.round(ta.atr(high, low, c, 14), 6),
        macd=np.round(ta.macd(c)[0], 6),
        rsi14=np.round(ta.rsi(c, 14), 6),
        volume=np.round(v, 3),
        volume_raw=v,
    )


def _series(values: Array, last: int) -> list[float]:
    series: list[float] = values[last - SERIES_POINTS + 1 : last + 1].tolist()
    return series


def assemble(
    coin: str,
    intraday: IntradayIndicators,
    i: int,
    long_term: LongTermIndicators,
    k: int,
    quote: Quote,
) -> CoinSnapshot:
    """The snapshot at closed 3-minute candle ``i`` and closed 4-hour candle ``k``."""
    if i + 1 < INTRADAY_MIN_CANDLES or k + 1 < LONG_TERM_MIN_CANDLES:
        raise MissingData(
            f"{coin}: not enough history ({i + 1} closed 3m and {k + 1} closed 4h candles;"
            f" {INTRADAY_MIN_CANDLES} and {LONG_TERM_MIN_CANDLES} needed)"
        )
    vol_from = max(0, k - VOLUME_AVERAGE_CANDLES + 1)
    volume_average = float(np.mean(long_term.volume_raw[vol_from : k + 1]))
    snap = CoinSnapshot(
        coin=coin,
        price=quote.price,
        data_time=quote.data_time,
        ema20=float(intraday.ema20[i]),
        macd=float(intraday.macd[i]),
        rsi7=round(float(intraday.rsi7[i]), 3),
        rsi14=round(float(intraday.rsi14[i]), 3),
        open_interest_latest=round(quote.open_interest_latest, 2),
        open_interest_average=round(quote.open_interest_average, 2),
        funding_rate=float(f"{quote.funding_rate:.6g}"),
        intraday=IntradaySeries(
            mid_prices=_series(intraday.mids, i),
            ema20=_series(intraday.ema20, i),
            macd=_series(intraday.macd, i),
            rsi7=_series(intraday.rsi7, i),
            rsi14=_series(intraday.rsi14, i),
        ),
        long_term=LongTermContext(
            ema20=float(long_term.ema20[k]),
            ema50=float(long_term.ema50[k]),
            atr3=float(long_term.atr3[k]),
            atr14=float(long_term.atr14[k]),
            volume_current=float(long_term.volume[k]),
            volume_average=round(volume_average, 3),
            macd=_series(long_term.macd, k),
            rsi14=_series(long_term.rsi14, k),
        ),
        mark_price=quote.mark_price,
        oracle_price=quote.oracle_price,
    )
    _check_finite(snap)
    return snap


def _check_finite(snap: CoinSnapshot) -> None:
    # A nan would be stored as null and shown to a model as a number: refuse it instead.
    i, lt = snap.intraday, snap.long_term
    values = [
        snap.ema20,
        snap.macd,
        snap.rsi7,
        snap.rsi14,
        snap.open_interest_latest,
        snap.open_interest_average,
        snap.funding_rate,
        lt.ema20,
        lt.ema50,
        lt.atr3,
        lt.atr14,
        lt.volume_current,
        lt.volume_average,
        *i.mid_prices,
        *i.ema20,
        *i.macd,
        *i.rsi7,
        *i.rsi14,
        *lt.macd,
        *lt.rsi14,
    ]
    if not np.isfinite(np.asarray(values, dtype=np.float64)).all():
        raise MissingData(f"{snap.coin}: an indicator is not a finite number")


def build_coin_snapshot(
    coin: str,
    *,
    intraday_close: Array,
    long_term_high: Array,
    long_term_low: Array,
    long_term_close: Array,
    long_term_volume: Array,
    quote: Quote,
) -> CoinSnapshot:
    """A snapshot from closed candles (oldest → newest), indicators over exactly these."""
    intraday = intraday_indicators(intraday_close)
    long_term = long_term_indicators(
        long_term_high, long_term_low, long_term_close, long_term_volume
    )
    return assemble(
        coin, intraday, len(intraday_close) - 1, long_term, len(long_term_close) - 1, quote
    )
