"""Seeded synthetic market data: one-minute bars, aggregated to 3-minute and 4-hour candles.

The path is a geometric random walk whose drift switches between regimes (up, flat,
down) so that trend-following and mean-reverting models both find something to do.
The same seed and start always give the same tape, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class CoinProfile:
    start_price: float
    daily_vol: float  # standard deviation of daily log returns
    minute_volume: float  # mean traded size per minute, in coins
    open_interest: float  # in coins
    funding_hourly: float  # mean hourly funding rate


PROFILES: dict[str, CoinProfile] = {
    "BTC": CoinProfile(107_000.0, 0.025, 6.0, 25_000.0, 0.0000125),
    "ETH": CoinProfile(3_900.0, 0.035, 120.0, 480_000.0, 0.0000125),
    "SOL": CoinProfile(190.0, 0.05, 1_800.0, 3_500_000.0, 0.000015),
    "BNB": CoinProfile(1_100.0, 0.03, 90.0, 90_000.0, 0.00001),
    "DOGE": CoinProfile(0.19, 0.06, 2_500_000.0, 1_400_000_000.0, 0.00002),
    "XRP": CoinProfile(2.4, 0.045, 350_000.0, 220_000_000.0, 0.0000125),
}
DEFAULT_PROFILE = CoinProfile(10.0, 0.05, 10_000.0, 1_000_000.0, 0.0000125)


@dataclass(frozen=True)
class Candles:
    """Columns of one interval's candles; ``open_time[i]`` is seconds since the tape start."""

    interval_s: int
    open_time: NDArray[np.int64]
    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array

    def __len__(self) -> int:
        return len(self.close)

    def last_closed(self, elapsed_s: float) -> int:
        """Index of the newest candle closed at ``elapsed_s`` (−1 if none)."""
        return int(elapsed_s // self.interval_s) - 1


@dataclass(frozen=True)
class CoinTape:
    coin: str
    minutes: Candles
    open_interest: Array  # per minute, observed at the minute's end
    funding_hourly: Array  # per minute: the hourly rate in force


class SyntheticTape:
    def __init__(
        self,
        coins: tuple[str, ...],
        start: datetime,
        minutes: int,
        seed: int,
        *,
        anchor_minute: int = 0,
    ) -> None:
        """``anchor_minute``: the minute at which each coin trades at its profile price
        (the arena's start, so inception prices look like the real market's)."""
        if start.tzinfo is None:
            raise ValueError("the tape start must be timezone-aware")
        if minutes < 1:
            raise ValueError("the tape needs at least one minute")
        self.start = start
        self.minutes = minutes
        self.seed = seed
        self.coins: dict[str, CoinTape] = {
            coin: _generate(coin, index, minutes, seed, anchor_minute)
            for index, coin in enumerate(coins)
        }

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


def _generate(coin: str, index: int, n: int, seed: int, anchor: int) -> CoinTape:
    profile = PROFILES.get(coin, DEFAULT_PROFILE)
    rng = np.random.default_rng([seed, index, 7919])
    sigma = profile.daily_vol / np.sqrt(1440.0)
    # Regimes last about six hours on average; drift is a fraction of the volatility.
    regime_len = rng.geometric(1.0 / 360.0, size=n // 30 + 2)
    regimes = np.repeat(rng.choice([-1.0, 0.0, 1.0], size=len(regime_len)), regime_len)[:n]
    if len(regimes) < n:
        regimes = np.pad(regimes, (0, n - len(regimes)))
    drift = regimes * 0.05 * sigma
    shocks = rng.standard_normal(n) * sigma
    log_path = np.cumsum(drift + shocks)
    anchor = min(max(anchor, 0), n - 1)
    log_close = np.log(profile.start_price) + log_path - log_path[anchor]
    close = np.exp(log_close)
    open_ = np.empty(n)
    open_[0] = close[0] * np.exp(-shocks[0])
    open_[1:] = close[:-1]
    wick_up = np.abs(rng.standard_normal(n)) * sigma * 0.6
    wick_down = np.abs(rng.standard_normal(n)) * sigma * 0.6
    high = np.maximum(open_, close) * (1.0 + wick_up)
    low = np.minimum(open_, close) * (1.0 - wick_down)
    volume = profile.minute_volume * rng.lognormal(mean=-0.125, sigma=0.5, size=n)
    # Open interest: mean-reverting walk around its level.
    oi_noise = rng.standard_normal(n) * 0.002
    oi = np.empty(n)
    level = 1.0
    for i in range(n):
        level += 0.001 * (1.0 - level) + oi_noise[i]
        oi[i] = level
    open_interest = profile.open_interest * np.clip(oi, 0.5, 1.5)
    # Funding changes on the hour around its mean.
    hours = n // 60 + 1
    hourly = profile.funding_hourly + rng.standard_normal(hours) * profile.funding_hourly * 0.8
    funding = np.repeat(hourly, 60)[:n]
    minutes = Candles(
        interval_s=60,
        open_time=np.arange(n, dtype=np.int64) * 60,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )
    return CoinTape(coin=coin, minutes=minutes, open_interest=open_interest, funding_hourly=funding)


def aggregate(minutes: Candles, interval_s: int) -> Candles:
    """Whole candles of ``interval_s`` from one-minute bars (a partial tail is dropped)."""
    per = interval_s // minutes.interval_s
    count = len(minutes) // per
    if count == 0:
        empty = np.empty(0)
        return Candles(interval_s, np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
    cut = count * per
    shape = (count, per)
    return Candles(
        interval_s=interval_s,
        open_time=minutes.open_time[:cut:per],
        open=minutes.open[:cut:per].copy(),
        high=minutes.high[:cut].reshape(shape).max(axis=1),
        low=minutes.low[:cut].reshape(shape).min(axis=1),
        close=minutes.close[per - 1 : cut : per].copy(),
        volume=minutes.volume[:cut].reshape(shape).sum(axis=1),
    )
