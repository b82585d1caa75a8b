"""The statistics kernel: known values, bootstrap properties and the ±9 Sharpe ballpark."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from projections.statistics import (
    HOUR,
    BootstrapSettings,
    EquityCurve,
    TradeRecord,
    annualised_sharpe,
    annualised_sortino,
    compute_kpis,
    default_block_length,
    max_drawdown,
    period_returns,
    return_statistics,
    stationary_bootstrap_indices,
    trade_statistics,
)
from tests.support.fakes import T0

D = Decimal
SQRT_HOURS_PER_YEAR = math.sqrt(8760)


def hourly(*equity: str, flows: tuple[str, ...] = ()) -> EquityCurve:
    return EquityCurve(
        times=[T0 + i * HOUR for i in range(len(equity))],
        equity=[D(e) for e in equity],
        flows=[D(f) for f in flows],
    )


def trade(gross: str, fees: str, funding: str, hours: float, notional: str) -> TradeRecord:
    return TradeRecord(
        opened_at=T0,
        closed_at=T0 + timedelta(hours=hours),
        gross_pnl=D(gross),
        fees=D(fees),
        funding=D(funding),
        traded_notional=D(notional),
    )


# -- known values ----------------------------------------------------------------------------


def test_returns_of_a_small_curve_by_hand() -> None:
    # 100 → 110 → 99 → 108.9: +10 %, −10 %, +10 %.
    returns = period_returns(hourly("100", "110", "99", "108.9"))
    assert returns == pytest.approx([0.1, -0.1, 0.1])
    stats = return_statistics(returns, settings=BootstrapSettings(resamples=50))
    assert stats.total_return.estimate == pytest.approx(1.1 * 0.9 * 1.1 - 1)
    # mean 1/30, sample std sqrt(((1/15)² + (2/15)² + (1/15)²) / 2) = 0.11547
    assert stats.sharpe.estimate == pytest.approx((1 / 30) / 0.1154700538 * SQRT_HOURS_PER_YEAR)
    # downside deviation sqrt(0.01 / 3)
    assert stats.sortino.estimate == pytest.approx((1 / 30) / math.sqrt(0.01 / 3) * 93.59487)
    assert stats.max_drawdown == pytest.approx(0.1)  # 1.1 → 0.99
    assert stats.num_returns == 3
    assert stats.periods_per_year == 8760


def test_a_deposit_is_not_a_return() -> None:
    # 100 → 150 of which 50 deposited during the hour: a flat hour; then +10 %.
    returns = period_returns(hourly("100", "150", "165", flows=("0", "50", "0")))
    assert returns == pytest.approx([0.0, 0.1])


def test_an_irregular_curve_is_refused() -> None:
    curve = EquityCurve(times=[T0, T0 + HOUR, T0 + 3 * HOUR], equity=[D(1), D(1), D(1)])
    with pytest.raises(ValueError, match="not sampled every"):
        period_returns(curve)


def test_the_sampling_period_sets_the_annualisation() -> None:
    returns = [0.01, -0.02, 0.03, 0.0]
    per_day = annualised_sharpe(returns, timedelta(days=1))
    per_hour = annualised_sharpe(returns, HOUR)
    assert per_day is not None
    assert per_hour is not None
    assert per_hour / per_day == pytest.approx(math.sqrt(24))


def test_undefined_ratios_are_none() -> None:
    assert annualised_sharpe([0.01, 0.01, 0.01]) is None  # no variation
    assert annualised_sortino([0.01, 0.02, 0.03]) is None  # no losing period
    stats = return_statistics([0.05])
    assert stats.sharpe.estimate is None
    assert stats.sharpe.low is None
    assert stats.total_return.estimate == pytest.approx(0.05)
    assert stats.total_return.low is None


def test_drawdown_of_a_rising_curve_is_zero() -> None:
    assert max_drawdown([0.01, 0.02, 0.0]) == 0.0
    assert max_drawdown([]) == 0.0
    assert max_drawdown([0.5, -0.5, 0.5]) == pytest.approx(0.5)


def test_trade_statistics_by_hand() -> None:
    trades = [
        trade("10", "1", "-0.5", hours=1, notional="1000"),  # net 8.5
        trade("-4", "1", "0.5", hours=3, notional="500"),  # net −4.5
    ]
    stats = trade_statistics(trades, ai_cost=D(3))
    assert stats.num_trades == 2
    assert stats.win_rate == 0.5
    assert stats.profit_factor == pytest.approx(8.5 / 4.5)
    assert stats.avg_hold_hours == 2
    assert stats.gross_pnl == 6
    assert stats.net_pnl == 4
    assert stats.fees_share_of_gross == pytest.approx(2 / 6)
    assert stats.funding_share_of_gross == 0
    assert stats.ai_cost_per_trade == 1.5
    assert stats.ai_cost_per_pnl_dollar == 0.75


def test_no_trades_leave_the_trade_ratios_undefined() -> None:
    stats = trade_statistics([], ai_cost=D(2))
    assert stats.win_rate is None
    assert stats.profit_factor is None
    assert stats.ai_cost_per_trade is None
    assert stats.fees_share_of_gross is None


def test_kpis_of_a_run() -> None:
    curve = hourly("100", "110", "99", "108.9", "120")
    trades = [trade("10", "1", "0", hours=1, notional="300")]
    kpis = compute_kpis(curve, trades, ai_cost=D(1), settings=BootstrapSettings(resamples=100))
    mean_equity = (100 + 110 + 99 + 108.9 + 120) / 5
    assert kpis.turnover == pytest.approx(300 / mean_equity)
    assert kpis.turnover_per_day == pytest.approx(300 / mean_equity * 6)  # a 4-hour span
    flat = kpis.flat()
    assert flat["total_return"] == pytest.approx(0.2)
    assert flat["win_rate"] == 1.0
    assert set(flat) >= {"sharpe", "sortino", "max_drawdown", "fees_share_of_gross"}


# -- the bootstrap ---------------------------------------------------------------------------


def test_default_block_length_grows_as_the_cube_root() -> None:
    assert default_block_length(1) == 1
    assert default_block_length(408) == 8  # a 17-day season of hourly returns
    assert default_block_length(8760) == 21  # a year


def test_stationary_bootstrap_keeps_blocks_of_the_mean_length() -> None:
    rng = np.random.default_rng(7)
    indices = stationary_bootstrap_indices(500, 200, 10.0, rng)
    assert indices.shape == (200, 500)
    assert indices.min() >= 0
    assert indices.max() < 500
    continued = np.mean((indices[:, 1:] - indices[:, :-1]) % 500 == 1)
    assert continued == pytest.approx(0.9, abs=0.01)  # a block ends with probability 1/10


def test_block_length_one_draws_independent_indices() -> None:
    indices = stationary_bootstrap_indices(1000, 50, 1.0, np.random.default_rng(1))
    continued = np.mean((indices[:, 1:] - indices[:, :-1]) % 1000 == 1)
    assert continued < 0.01


def test_sharpe_interval_of_a_season_is_about_plus_minus_nine() -> None:
    # 17 days of i.i.d. hourly returns (408 periods, annualised with 8,760 hours a year):
    # the interval's half-width should be near 1.96 · sqrt(8760 / 408) = 9.08.
    rng = np.random.default_rng(2026)
    half_widths = []
    for seed in range(10):
        returns = rng.normal(0.0001, 0.005, 17 * 24)
        sharpe = return_statistics(returns, settings=BootstrapSettings(seed=seed)).sharpe
        assert sharpe.low is not None
        assert sharpe.high is not None
        half_widths.append((sharpe.high - sharpe.low) / 2)
    assert 8.0 < float(np.mean(half_widths)) < 10.0
    assert all(6.0 < w < 12.5 for w in half_widths)


well_behaved = st.tuples(
    st.integers(min_value=0, max_value=2**32 - 1),  # the data's seed
    st.integers(min_value=60, max_value=400),  # periods
    st.floats(min_value=-0.002, max_value=0.002),  # mean hourly return
    st.floats(min_value=0.001, max_value=0.03),  # hourly volatility
)


def normal_returns(data_seed: int, n: int, mean: float, vol: float) -> np.ndarray:
    return np.random.default_rng(data_seed).normal(mean, vol, n)


@given(well_behaved, st.integers(min_value=0, max_value=1000))
def test_intervals_contain_the_point_estimate(sample: tuple, seed: int) -> None:
    returns = normal_returns(*sample)
    stats = return_statistics(returns, settings=BootstrapSettings(seed=seed, resamples=300))
    checked = [stats.total_return, stats.sharpe]
    if (returns < 0).any():  # without a single loss the downside deviation is undefined
        checked.append(stats.sortino)
    else:
        assert stats.sortino.estimate is None
    for interval in checked:
        assert interval.estimate is not None
        assert interval.low is not None
        assert interval.high is not None
        assert interval.low <= interval.estimate <= interval.high


@given(well_behaved, st.integers(min_value=0, max_value=1000))
def test_intervals_are_deterministic_under_a_seed(sample: tuple, seed: int) -> None:
    returns = normal_returns(*sample)
    settings = BootstrapSettings(seed=seed, resamples=100)
    assert return_statistics(returns, settings=settings) == return_statistics(
        returns.copy(), settings=settings
    )


def test_another_seed_moves_the_interval() -> None:
    returns = normal_returns(1, 200, 0.0, 0.01)
    first = return_statistics(returns, settings=BootstrapSettings(seed=1)).sharpe
    second = return_statistics(returns, settings=BootstrapSettings(seed=2)).sharpe
    assert first.estimate == second.estimate
    assert first.low != second.low


@given(well_behaved, st.floats(min_value=0.01, max_value=100))
@example((36, 60, 0.001953125, 0.001), 1.0)  # all gains: Sortino undefined at every scale
def test_sharpe_and_sortino_are_scale_invariant(sample: tuple, factor: float) -> None:
    returns = normal_returns(*sample)
    settings = BootstrapSettings(seed=3, resamples=100)
    plain = return_statistics(returns, settings=settings)
    scaled = return_statistics(returns * factor, settings=settings)
    for name in ("sharpe", "sortino"):
        a, b = getattr(plain, name), getattr(scaled, name)
        for x, y in ((a.estimate, b.estimate), (a.low, b.low), (a.high, b.high)):
            # Undefined (a sample with almost no losses has no Sortino interval) at one
            # scale means undefined at every scale; defined values scale away.
            assert (x is None) == (y is None), (name, x, y)
            if x is not None:
                assert y == pytest.approx(x, rel=1e-9, abs=1e-9)
    assert plain.sharpe.estimate is not None  # a well-behaved sample always has a Sharpe


def test_a_long_series_is_evaluated_in_chunks_with_the_same_result() -> None:
    # More values than one chunk holds: the chunked draw must equal the settings' meaning.
    returns = normal_returns(5, 3000, 0.0, 0.01)
    settings = BootstrapSettings(seed=4, resamples=400)
    once = return_statistics(returns, settings=settings)
    again = return_statistics(returns, settings=settings)
    assert once == again
    assert once.block_length == default_block_length(3000)
