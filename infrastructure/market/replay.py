"""A market provider that replays a tape point-in-time.

At as-of time ``t`` it serves only data stamped at or before ``t``: the newest whole
minute for prices, the newest *closed* 3-minute and 4-hour candles for indicators. Any
attempt to serve later data raises :class:`LookAheadError` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from application.ports import (
    CoinSnapshot,
    IntradaySeries,
    LongTermContext,
    LookAheadError,
    MarketSnapshot,
    MissingData,
)
from infrastructure.market import indicators as ta
from infrastructure.market.synthetic import Array, Candles, CoinTape, SyntheticTape, aggregate

SERIES_POINTS = 10
VOLUME_AVERAGE_CANDLES = 20
OI_AVERAGE_MINUTES = 24 * 60
INTRADAY_S = 3 * 60
LONG_TERM_S = 4 * 60 * 60


@dataclass(frozen=True)
class _Prepared:
    """Every series a snapshot needs, computed once (indicators are causal, so the value at
    a candle never depends on later candles) and rounded as the prompt shows them."""

    tape: CoinTape
    intraday: Candles
    mids: Array
    ema20: Array
    macd: Array
    rsi7: Array
    rsi14: Array
    long_term: Candles
    lt_ema20: Array
    lt_ema50: Array
    lt_atr3: Array
    lt_atr14: Array
    lt_macd: Array
    lt_rsi14: Array
    lt_volume: Array
    lt_volume_sum: Array  # cumulative, for window means in O(1)
    oi: Array
    oi_sum: Array


def _cumulative(values: Array) -> Array:
    return np.concatenate(([0.0], np.cumsum(values)))


def _prepare(tape: CoinTape) -> _Prepared:
    intraday = aggregate(tape.minutes, INTRADAY_S)
    lt = aggregate(tape.minutes, LONG_TERM_S)
    return _Prepared(
        tape=tape,
        intraday=intraday,
        mids=np.round(intraday.close, 6),
        ema20=np.round(ta.ema(intraday.close, 20), 6),
        macd=np.round(ta.macd(intraday.close)[0], 6),
        rsi7=np.round(ta.rsi(intraday.close, 7), 6),
        rsi14=np.round(ta.rsi(intraday.close, 14), 6),
        long_term=lt,
        lt_ema20=np.round(ta.ema(lt.close, 20), 6),
        lt_ema50=np.round(ta.ema(lt.close, 50), 6),
        lt_atr3=np.round(ta.atr(lt.high, lt.low, lt.close, 3), 6),
        lt_atr14=np.round(ta.atr(lt.high, lt.low, lt.close, 14), 6),
        lt_macd=np.round(ta.macd(lt.close)[0], 6),
        lt_rsi14=np.round(ta.rsi(lt.close, 14), 6),
        lt_volume=np.round(lt.volume, 3),
        lt_volume_sum=_cumulative(lt.volume),
        oi=np.round(tape.open_interest, 2),
        oi_sum=_cumulative(tape.open_interest),
    )


def _decimal(value: float) -> Decimal:
    # Prices carry 6 significant figures, as a venue would quote them.
    return Decimal(f"{value:.6g}")


def _series(values: Array, last: int) -> list[float]:
    series: list[float] = values[last - SERIES_POINTS + 1 : last + 1].tolist()
    return series


class ReplayMarket:
    """``MarketData`` over a :class:`SyntheticTape` (or any tape of the same shape)."""

    def __init__(self, tape: SyntheticTape, *, max_staleness_s: float = 90.0) -> None:
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

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        return MarketSnapshot(as_of=as_of, coins={coin: self._coin(coin, as_of) for coin in coins})

    def _coin(self, coin: str, as_of: datetime) -> CoinSnapshot:
        p, minute, elapsed = self._minute(coin, as_of)
        i = p.intraday.last_closed(elapsed)
        k = p.long_term.last_closed(elapsed)
        warm_i = 33 + SERIES_POINTS  # MACD needs 33 candles before its first value
        warm_k = 50 + SERIES_POINTS
        if i < warm_i or k < warm_k:
            raise MissingData(
                f"{coin}: not enough history at {as_of.isoformat()} "
                f"({i + 1} closed 3m and {k + 1} closed 4h candles)"
            )
        self._guard((i + 1) * INTRADAY_S, elapsed, f"{coin} 3m candle {i}")
        self._guard((k + 1) * LONG_TERM_S, elapsed, f"{coin} 4h candle {k}")
        tape = p.tape
        oi_from = max(0, minute - OI_AVERAGE_MINUTES + 1)
        vol_from = max(0, k - VOLUME_AVERAGE_CANDLES + 1)
        oi_average = (p.oi_sum[minute + 1] - p.oi_sum[oi_from]) / (minute + 1 - oi_from)
        volume_average = (p.lt_volume_sum[k + 1] - p.lt_volume_sum[vol_from]) / (k + 1 - vol_from)
        return CoinSnapshot(
            coin=coin,
            price=_decimal(float(tape.minutes.close[minute])),
            data_time=self.tape.start + timedelta(seconds=(minute + 1) * 60),
            ema20=float(p.ema20[i]),
            macd=float(p.macd[i]),
            rsi7=round(float(p.rsi7[i]), 3),
            rsi14=round(float(p.rsi14[i]), 3),
            open_interest_latest=float(p.oi[minute]),
            open_interest_average=round(float(oi_average), 2),
            funding_rate=float(f"{tape.funding_hourly[minute]:.6g}"),
            intraday=IntradaySeries(
                mid_prices=_series(p.mids, i),
                ema20=_series(p.ema20, i),
                macd=_series(p.macd, i),
                rsi7=_series(p.rsi7, i),
                rsi14=_series(p.rsi14, i),
            ),
            long_term=LongTermContext(
                ema20=float(p.lt_ema20[k]),
                ema50=float(p.lt_ema50[k]),
                atr3=float(p.lt_atr3[k]),
                atr14=float(p.lt_atr14[k]),
                volume_current=float(p.lt_volume[k]),
                volume_average=round(float(volume_average), 3),
                macd=_series(p.lt_macd, k),
                rsi14=_series(p.lt_rsi14, k),
            ),
        )
