"""Performance statistics with error bars: the KPIs of a run and their bootstrap intervals.

Shared by the live analytics view and (later) the backtester. Pure: no I/O, no clock; the
only randomness is a NumPy generator seeded by the caller, so the same inputs and seed give
the same intervals bit for bit (views must be identical between a rebuild and live).

Inputs are ``Decimal`` (money, as everywhere); the maths is float64 inside, because the
bootstrap is a numeric kernel: a KPI is a float, never money that is booked.

Conventions (each one a choice, stated so a reader can check the numbers):

* **Sampling.** The equity curve is sampled on a regular grid of ``period`` (one hour by
  default, the arena's account rows are hourly); a gap in the grid raises. Returns are
  simple, time-weighted period returns ``r_t = (E_t − F_t) / E_{t−1} − 1``, where ``F_t``
  is capital moved in (+) or out (−) during period t, so a deposit is not a gain.
* **Annualisation.** Crypto perpetuals trade every hour of the year: ``periods_per_year =
  365 days / period`` (8,760 for hourly returns); Sharpe and Sortino are multiplied by its
  square root. The risk-free rate is zero.
* **Sharpe** = mean / sample standard deviation (ddof 1). **Sortino** = mean / downside
  deviation, ``sqrt(mean(min(r, 0)²))`` over all periods (target 0). Undefined (None) when
  the denominator is zero or fewer than two returns exist.
* **Total return** is compounded: ``prod(1 + r) − 1`` (equal to E_T/E_0 − 1 without flows).
* **Max drawdown** is measured on the time-weighted wealth index ``cumprod(1 + r)``, as a
  positive fraction of the running peak.
* **Intervals** are percentile intervals (2.5 %, 97.5 % by default) of the statistic over
  stationary-bootstrap resamples (Politis & Romano 1994) of the return series. Blocks keep
  the short-range dependence of returns (volatility clusters for hours); their length is
  geometric with mean ``block_length``, by default ``ceil(n ** (1/3))`` periods, the
  rate-optimal order for variance-type statistics (Hall, Horowitz & Jing 1995): 8 hours for a
  17-day season of hourly returns, 21 hours for a year.
* **Trades.** Win rate counts trades with net P&L > 0; profit factor = gains / |losses| of
  net P&L (None without a loss); fee and funding shares are total fees paid and total
  funding received (+) or paid (−) over |gross P&L| of the trades; AI cost per dollar is
  over |net realised P&L| of the trades; turnover is traded notional over the mean equity of
  the curve (and per day of the curve's span).

For i.i.d. returns the interval of an annualised Sharpe over n periods has half-width about
``1.96 × sqrt(periods_per_year / n)``: ±9 over a 17-day season, whatever the sampling
frequency, which is why one season rarely separates skill from luck.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

HOUR = timedelta(hours=1)
YEAR = timedelta(days=365)
#: Resamples per interval: the percentile at 2.5 % is then the 25th of 1,000 values.
DEFAULT_RESAMPLES = 1000
#: Resamples are evaluated in chunks of at most this many values, to bound memory.
_CHUNK_VALUES = 1_000_000


@dataclass(frozen=True)
class EquityCurve:
    """Equity on a regular grid. ``flows[i]`` is capital moved in (+) or out (−) during the
    period ending at ``times[i]`` (``flows[0]`` is ignored); no flows means none moved."""

    times: Sequence[datetime]
    equity: Sequence[Decimal]
    flows: Sequence[Decimal] = ()

    def __post_init__(self) -> None:
        if len(self.times) != len(self.equity):
            raise ValueError("an equity curve needs one time per equity value")
        if self.flows and len(self.flows) != len(self.equity):
            raise ValueError("an equity curve needs one flow per equity value, or none")


@dataclass(frozen=True)
class TradeRecord:
    """One closed round trip. ``traded_notional`` is entry plus exit notional."""

    opened_at: datetime
    closed_at: datetime
    gross_pnl: Decimal
    fees: Decimal
    funding: Decimal  # received (+) or paid (−)
    traded_notional: Decimal

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees + self.funding


@dataclass(frozen=True)
class BootstrapSettings:
    seed: int = 0
    resamples: int = DEFAULT_RESAMPLES
    block_length: float | None = None  # mean block length in periods; None: ceil(n^(1/3))
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError("resamples must be at least 1")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        if self.block_length is not None and self.block_length < 1:
            raise ValueError("block_length must be at least one period")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval; all None when the statistic is undefined."""

    estimate: float | None
    low: float | None
    high: float | None


UNDEFINED = Interval(None, None, None)


@dataclass(frozen=True)
class ReturnStatistics:
    """The curve's KPIs that have intervals, plus drawdown and how they were sampled."""

    total_return: Interval
    sharpe: Interval
    sortino: Interval
    max_drawdown: float
    num_returns: int
    block_length: float
    periods_per_year: float


@dataclass(frozen=True)
class TradeStatistics:
    num_trades: int
    win_rate: float | None
    profit_factor: float | None
    avg_hold_hours: float | None
    gross_pnl: float
    net_pnl: float
    fees_share_of_gross: float | None
    funding_share_of_gross: float | None
    ai_cost_per_trade: float | None
    ai_cost_per_pnl_dollar: float | None


@dataclass(frozen=True)
class Kpis:
    returns: ReturnStatistics
    trades: TradeStatistics
    turnover: float | None  # traded notional / mean equity
    turnover_per_day: float | None

    def flat(self) -> dict[str, float | None]:
        """Every KPI as one scalar by name (the input of replica aggregation)."""
        out: dict[str, float | None] = {}
        for name in ("total_return", "sharpe", "sortino"):
            interval: Interval = getattr(self.returns, name)
            out[name] = interval.estimate
        out["max_drawdown"] = self.returns.max_drawdown
        for name, value in asdict(self.trades).items():
            out[name] = None if value is None else float(value)
        out["turnover"] = self.turnover
        out["turnover_per_day"] = self.turnover_per_day
        return out


# -- returns ------------------------------------------------------------------------------


def periods_per_year(period: timedelta = HOUR) -> float:
    if period <= timedelta(0):
        raise ValueError("the sampling period must be positive")
    return YEAR / period


def period_returns(curve: EquityCurve, period: timedelta = HOUR) -> Floats:
    """Time-weighted simple returns of a regular curve (see the module docstring)."""
    times = list(curve.times)
    for earlier, later in itertools.pairwise(times):
        if abs((later - earlier) - period) > period / 1000:
            raise ValueError(f"the curve is not sampled every {period}: {earlier} → {later}")
    equity = np.asarray([float(e) for e in curve.equity], dtype=np.float64)
    if len(equity) < 2:
        return np.zeros(0, dtype=np.float64)
    if np.any(equity[:-1] <= 0):
        raise ValueError("returns need positive equity at the start of every period")
    flows = np.asarray([float(f) for f in curve.flows], dtype=np.float64)
    moved = flows[1:] if len(flows) else np.zeros(len(equity) - 1, dtype=np.float64)
    result: Floats = (equity[1:] - moved) / equity[:-1] - 1.0
    return result


def default_block_length(n: int) -> float:
    return float(max(1, math.ceil(n ** (1 / 3))))


def _sharpe_rows(returns: Floats) -> Floats:
    """Per-period Sharpe of each row; NaN where the row does not vary."""
    n = returns.shape[1]
    if n < 2:
        return np.full(returns.shape[0], np.nan)
    mean = returns.mean(axis=1)
    std = returns.std(axis=1, ddof=1)
    tiny = std <= 1e-15 * np.maximum(1.0, np.abs(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: Floats = np.where(tiny, np.nan, mean / np.where(tiny, 1.0, std))
    return result


def _sortino_rows(returns: Floats) -> Floats:
    if returns.shape[1] < 2:
        return np.full(returns.shape[0], np.nan)
    mean = returns.mean(axis=1)
    downside = np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2, axis=1))
    none = downside <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        result: Floats = np.where(none, np.nan, mean / np.where(none, 1.0, downside))
    return result


def _total_return_rows(returns: Floats) -> Floats:
    result: Floats = np.prod(1.0 + returns, axis=1) - 1.0
    return result


def annualised_sharpe(returns: Sequence[float] | Floats, period: timedelta = HOUR) -> float | None:
    row = np.asarray(returns, dtype=np.float64)[np.newaxis, :]
    value = float(_sharpe_rows(row)[0]) * math.sqrt(periods_per_year(period))
    return None if math.isnan(value) else value


def annualised_sortino(returns: Sequence[float] | Floats, period: timedelta = HOUR) -> float | None:
    row = np.asarray(returns, dtype=np.float64)[np.newaxis, :]
    value = float(_sortino_rows(row)[0]) * math.sqrt(periods_per_year(period))
    return None if math.isnan(value) else value


def max_drawdown(returns: Sequence[float] | Floats) -> float:
    wealth = np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))
    if len(wealth) == 0:
        return 0.0
    peaks = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    return float(np.max((peaks - wealth) / peaks).clip(min=0.0))


# -- the bootstrap ---------------------------------------------------------------------------


def stationary_bootstrap_indices(
    n: int, count: int, block_length: float, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """``count`` rows of ``n`` indices into a series of length ``n``: blocks start at a
    uniform index, continue with the next one (wrapping round) and end with probability
    ``1 / block_length`` after each element, so block lengths are geometric."""
    starts = rng.integers(0, n, size=(count, n))
    new_block = rng.random((count, n)) < 1.0 / block_length
    new_block[:, 0] = True
    positions = np.arange(n)
    block_start = np.maximum.accumulate(np.where(new_block, positions, 0), axis=1)
    first = np.take_along_axis(starts, block_start, axis=1)
    result: npt.NDArray[np.int64] = (first + (positions - block_start)) % n
    return result


def bootstrap_distributions(
    returns: Floats,
    statistics: Sequence[Callable[[Floats], Floats]],
    settings: BootstrapSettings,
    block_length: float,
) -> list[Floats]:
    """Each statistic (a function of a matrix of resampled rows) over the same resamples."""
    n = len(returns)
    rng = np.random.default_rng(settings.seed)
    chunk = max(1, _CHUNK_VALUES // max(1, n))
    values: list[list[Floats]] = [[] for _ in statistics]
    for done in range(0, settings.resamples, chunk):
        count = min(chunk, settings.resamples - done)
        resampled = returns[stationary_bootstrap_indices(n, count, block_length, rng)]
        for collected, statistic in zip(values, statistics, strict=True):
            collected.append(statistic(resampled))
    return [np.concatenate(collected) for collected in values]


def _interval(
    estimate: float, distribution: Floats, settings: BootstrapSettings, scale: float
) -> Interval:
    if math.isnan(estimate):
        return UNDEFINED
    finite = distribution[np.isfinite(distribution)]
    if len(finite) * 2 < len(distribution):  # mostly undefined resamples: no honest interval
        return Interval(estimate * scale, None, None)
    tail = (1 - settings.confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(estimate * scale, float(low) * scale, float(high) * scale)


def return_statistics(
    returns: Sequence[float] | Floats,
    *,
    period: timedelta = HOUR,
    settings: BootstrapSettings | None = None,
) -> ReturnStatistics:
    """Total return, Sharpe and Sortino with intervals, and max drawdown, of a return series.

    The three statistics are computed on the same resamples, drawn from one generator
    seeded with ``settings.seed``."""
    settings = settings or BootstrapSettings()
    series = np.asarray(returns, dtype=np.float64)
    n = len(series)
    block = settings.block_length or default_block_length(n)
    block = min(block, float(max(n, 1)))
    yearly = periods_per_year(period)
    if n < 2:
        # Too short to resample: the total return alone, without an interval.
        total = float(_total_return_rows(series[np.newaxis, :])[0]) if n else 0.0
        total_return, sharpe, sortino = Interval(total, None, None), UNDEFINED, UNDEFINED
    else:
        row = series[np.newaxis, :]
        kernels = (_total_return_rows, _sharpe_rows, _sortino_rows)
        scales = (1.0, math.sqrt(yearly), math.sqrt(yearly))
        distributions = bootstrap_distributions(series, kernels, settings, block)
        total_return, sharpe, sortino = (
            _interval(float(kernel(row)[0]), distribution, settings, scale)
            for kernel, distribution, scale in zip(kernels, distributions, scales, strict=True)
        )
    return ReturnStatistics(
        total_return=total_return,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_drawdown(series),
        num_returns=n,
        block_length=block,
        periods_per_year=yearly,
    )


# -- trades -------------------------------------------------------------------------------


def _share(part: float, whole: float) -> float | None:
    return part / abs(whole) if whole else None


def trade_statistics(trades: Sequence[TradeRecord], *, ai_cost: Decimal) -> TradeStatistics:
    net = [float(t.net_pnl) for t in trades]
    gross = sum(float(t.gross_pnl) for t in trades)
    fees = sum(float(t.fees) for t in trades)
    funding = sum(float(t.funding) for t in trades)
    gains = sum(v for v in net if v > 0)
    losses = -sum(v for v in net if v < 0)
    holds = [(t.closed_at - t.opened_at) / HOUR for t in trades]
    total_net = sum(net)
    cost = float(ai_cost)
    return TradeStatistics(
        num_trades=len(trades),
        win_rate=sum(1 for v in net if v > 0) / len(net) if net else None,
        profit_factor=gains / losses if losses else None,
        avg_hold_hours=sum(holds) / len(holds) if holds else None,
        gross_pnl=gross,
        net_pnl=total_net,
        fees_share_of_gross=_share(fees, gross),
        funding_share_of_gross=_share(funding, gross),
        ai_cost_per_trade=cost / len(trades) if trades else None,
        ai_cost_per_pnl_dollar=cost / abs(total_net) if total_net else None,
    )


def compute_kpis(
    curve: EquityCurve,
    trades: Sequence[TradeRecord],
    *,
    ai_cost: Decimal = Decimal(0),
    period: timedelta = HOUR,
    settings: BootstrapSettings | None = None,
) -> Kpis:
    """Every KPI of one run: the curve's (with intervals) and the trades'."""
    returns = period_returns(curve, period)
    mean_equity = float(np.mean([float(e) for e in curve.equity])) if curve.equity else 0.0
    traded = sum(float(t.traded_notional) for t in trades)
    turnover = traded / mean_equity if mean_equity > 0 else None
    span_days = (curve.times[-1] - curve.times[0]) / timedelta(days=1) if curve.times else 0.0
    return Kpis(
        returns=return_statistics(returns, period=period, settings=settings),
        trades=trade_statistics(trades, ai_cost=ai_cost),
        turnover=turnover,
        turnover_per_day=turnover / span_days if turnover is not None and span_days else None,
    )
