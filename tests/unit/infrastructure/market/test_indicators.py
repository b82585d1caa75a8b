"""EMA, RSI, ATR and MACD: published reference values, TA-Lib as the oracle, causality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.market import indicators as ta

Array = np.ndarray

# -- published reference values ----------------------------------------------------------------

# StockCharts ChartSchool, "Relative Strength Index (RSI)", the RSI(14) calculation table
# (https://chartschool.stockcharts.com/table-of-contents/technical-indicators-and-overlays/
# technical-indicators/relative-strength-index-rsi, spreadsheet cs-rsi.xls).
RSI_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]  # fmt: skip
RSI14_PUBLISHED = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
    41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip

# StockCharts ChartSchool, "Moving Averages - Simple and Exponential", the 10-day EMA table
# (https://chartschool.stockcharts.com/table-of-contents/technical-indicators-and-overlays/
# technical-overlays/moving-averages-simple-and-exponential, spreadsheet cs-movavg.xls).
EMA_CLOSES = [
    22.27, 22.19, 22.08, 22.17, 22.18, 22.13, 22.23, 22.43, 22.24, 22.29, 22.15, 22.39, 22.38,
    22.61, 23.36, 24.05, 23.75, 23.83, 23.95, 23.63, 23.82, 23.87, 23.65, 23.19, 23.10, 23.33,
    22.68, 23.10, 22.40, 22.17,
]  # fmt: skip
EMA10_PUBLISHED = [
    22.22, 22.21, 22.24, 22.27, 22.33, 22.52, 22.80, 22.97, 23.13, 23.28, 23.34, 23.43, 23.51,
    23.53, 23.47, 23.40, 23.39, 23.26, 23.23, 23.08, 22.92,
]  # fmt: skip


def test_rsi14_matches_the_stockcharts_table() -> None:
    out = ta.rsi(np.array(RSI_CLOSES), 14)
    assert len(out) == len(RSI_CLOSES) == 33
    assert np.isnan(out[:14]).all()
    assert [round(float(v), 2) for v in out[14:]] == RSI14_PUBLISHED


def test_ema10_matches_the_stockcharts_table() -> None:
    out = ta.ema(np.array(EMA_CLOSES), 10)
    assert len(out) == len(EMA_CLOSES) == 30
    assert np.isnan(out[:9]).all()
    # The first value is the simple mean of the first ten closes (the seed).
    assert out[9] == pytest.approx(sum(EMA_CLOSES[:10]) / 10, rel=1e-12)
    assert [round(float(v), 2) for v in out[9:]] == EMA10_PUBLISHED


# -- TA-Lib as the oracle -----------------------------------------------------------------------

RTOL = 1e-9


def assert_matches(ours: Array, theirs: Array, what: str) -> None:
    assert ours.shape == theirs.shape, what
    ours_nan = np.isnan(ours)
    theirs_nan = np.isnan(theirs)
    # Same lookback: NaN exactly where TA-Lib has NaN, and only as a prefix.
    assert np.array_equal(ours_nan, theirs_nan), f"{what}: NaN positions differ"
    lookback = int(theirs_nan.sum())
    assert not ours_nan[lookback:].any(), f"{what}: NaN after the lookback"
    np.testing.assert_allclose(ours[lookback:], theirs[lookback:], rtol=RTOL, atol=0, err_msg=what)


def ohlc_walk(seed: int, n: int, start: float = 100.0) -> tuple[Array, Array, Array, Array]:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.standard_normal(n) * 0.01))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.standard_normal(n)) * 0.003)
    low = np.minimum(open_, close) * (1 - np.abs(rng.standard_normal(n)) * 0.003)
    return open_, high, low, close


def check_all_against_talib(high: Array, low: Array, close: Array) -> None:
    for period in (20, 50):
        assert_matches(ta.ema(close, period), talib.EMA(close, timeperiod=period), f"EMA{period}")
    for period in (7, 14):
        assert_matches(ta.rsi(close, period), talib.RSI(close, timeperiod=period), f"RSI{period}")
    for period in (3, 14):
        assert_matches(
            ta.atr(high, low, close, period),
            talib.ATR(high, low, close, timeperiod=period),
            f"ATR{period}",
        )
    ours = ta.macd(close, 12, 26, 9)
    theirs = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    for name, mine, ref in zip(("line", "signal", "hist"), ours, theirs, strict=True):
        assert_matches(mine, ref, f"MACD {name}")


@pytest.mark.parametrize(("seed", "n"), [(1, 500), (7, 2000), (42, 61), (2025, 34)])
def test_matches_talib_on_seeded_random_walks(seed: int, n: int) -> None:
    _, high, low, close = ohlc_walk(seed, n)
    check_all_against_talib(high, low, close)


def test_matches_talib_on_real_btc_minutes(shared_dir: Path) -> None:
    path = shared_dir / "data" / "candles" / "BTC-PERP_FTX_1m_2021-12-31_2022-02-01.csv"
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(2, 3, 4, 5))
    assert data.shape == (45031, 4)
    _, high, low, close = data.T.copy()
    check_all_against_talib(high, low, close)


def test_lookbacks_are_talibs() -> None:
    _, high, low, close = ohlc_walk(3, 100)
    assert int(np.isnan(ta.ema(close, 20)).sum()) == 19
    assert int(np.isnan(ta.rsi(close, 14)).sum()) == 14
    assert int(np.isnan(ta.atr(high, low, close, 14)).sum()) == 14
    assert [int(np.isnan(x).sum()) for x in ta.macd(close)] == [33, 33, 33]


def test_macd_fast_ema_is_seeded_on_the_slow_ema_first_bar() -> None:
    # TA-Lib's MACD is not EMA(12) − EMA(26): the fast EMA starts on bar 25 too.
    _, _, _, close = ohlc_walk(11, 200)
    line = ta.macd(close)[0]
    naive = ta.ema(close, 12) - ta.ema(close, 26)
    assert abs(line[33] - naive[33]) > 1e-9
    fast = ta._ema_from(close, 12, 26 - 12)
    np.testing.assert_allclose(line[33:], (fast - ta.ema(close, 26))[33:], rtol=1e-12)


def test_macd_swaps_fast_and_slow_like_talib() -> None:
    _, _, _, close = ohlc_walk(13, 300)
    swapped = ta.macd(close, 26, 12, 9)
    for mine, ref, name in zip(swapped, ta.macd(close, 12, 26, 9), "lsh", strict=True):
        np.testing.assert_array_equal(mine, ref, err_msg=name)
    theirs = talib.MACD(close, fastperiod=26, slowperiod=12, signalperiod=9)
    for mine, ref, name in zip(swapped, theirs, "lsh", strict=True):
        assert_matches(mine, ref, f"MACD(26, 12) {name}")


@pytest.mark.parametrize(("fast", "slow", "signal"), [(5, 35, 5), (3, 10, 16), (8, 9, 2)])
def test_macd_other_periods_match_talib(fast: int, slow: int, signal: int) -> None:
    _, _, _, close = ohlc_walk(fast * slow, 400)
    ours = ta.macd(close, fast, slow, signal)
    theirs = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    for mine, ref, name in zip(ours, theirs, "lsh", strict=True):
        assert_matches(mine, ref, f"MACD({fast}, {slow}, {signal}) {name}")


# -- edge cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 13, 14])
def test_series_no_longer_than_the_lookback_is_all_nan(n: int) -> None:
    _, high, low, close = ohlc_walk(5, max(n, 1))
    high, low, close = high[:n], low[:n], close[:n]
    assert len(ta.ema(close, 15)) == n
    assert np.isnan(ta.ema(close, 15)).all()
    assert np.isnan(ta.rsi(close, 14)).all()
    assert np.isnan(ta.atr(high, low, close, 14)).all()
    assert all(np.isnan(x).all() and len(x) == n for x in ta.macd(close))
    if n > 0:
        assert np.isnan(talib.RSI(close, timeperiod=14)).all()


def test_macd_between_slow_and_first_signal_is_all_nan() -> None:
    _, _, _, close = ohlc_walk(9, 33)  # enough for the MACD line, not for the signal
    line, signal, hist = ta.macd(close)
    assert np.isnan(line).all()
    assert np.isnan(signal).all()
    assert np.isnan(hist).all()
    assert all(np.isnan(x).all() for x in talib.MACD(close, 12, 26, 9))


def test_flat_series() -> None:
    flat = np.full(60, 123.45)
    rsi = ta.rsi(flat, 14)
    assert np.isnan(rsi[:14]).all()
    assert (rsi[14:] == 0.0).all()  # no movement at all: 0, as TA-Lib
    assert (talib.RSI(flat, timeperiod=14)[14:] == 0.0).all()
    atr = ta.atr(flat, flat, flat, 14)
    assert (atr[14:] == 0.0).all()
    ema = ta.ema(flat, 20)
    assert ema[19:] == pytest.approx([123.45] * 41, rel=1e-15)
    line, signal, hist = ta.macd(flat)
    assert np.abs(line[33:]).max() < 1e-9
    assert np.abs(signal[33:]).max() < 1e-9
    assert np.abs(hist[33:]).max() < 1e-9


def test_rsi_is_100_when_prices_only_rise() -> None:
    rising = np.arange(1.0, 31.0)
    out = ta.rsi(rising, 14)
    assert (out[14:] == 100.0).all()
    assert_matches(out, talib.RSI(rising, timeperiod=14), "RSI rising")


# -- causality ------------------------------------------------------------------------------

PRICES = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def _indicators(close: Array) -> dict[str, Array]:
    high = close * 1.01
    low = close * 0.99
    line, signal, hist = ta.macd(close)
    return {
        "ema20": ta.ema(close, 20),
        "ema50": ta.ema(close, 50),
        "rsi7": ta.rsi(close, 7),
        "rsi14": ta.rsi(close, 14),
        "atr3": ta.atr(high, low, close, 3),
        "atr14": ta.atr(high, low, close, 14),
        "macd": line,
        "macd_signal": signal,
        "macd_hist": hist,
    }


@given(
    past=st.lists(PRICES, min_size=0, max_size=80),
    future=st.lists(PRICES, min_size=1, max_size=40),
)
def test_value_at_i_depends_only_on_inputs_up_to_i(past: list[float], future: list[float]) -> None:
    before = _indicators(np.array(past, dtype=np.float64))
    after = _indicators(np.array(past + future, dtype=np.float64))
    for name, values in before.items():
        extended = after[name]
        assert len(values) == len(past)
        assert len(extended) == len(past) + len(future)
        np.testing.assert_array_equal(values, extended[: len(past)], err_msg=name)


@given(bars=st.lists(st.tuples(PRICES, PRICES, PRICES), min_size=1, max_size=60), cut=st.data())
def test_atr_is_causal_for_arbitrary_bars(
    bars: list[tuple[float, float, float]], cut: st.DataObject
) -> None:
    rows = [(max(a, b, c), min(a, b, c), b) for a, b, c in bars]
    high, low, close = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    k = cut.draw(st.integers(min_value=0, max_value=len(rows)))
    for period in (3, 14):
        full = ta.atr(high, low, close, period)
        prefix = ta.atr(high[:k], low[:k], close[:k], period)
        np.testing.assert_array_equal(prefix, full[:k])
