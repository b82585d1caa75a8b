"""EMA, MACD, RSI and ATR with TA-Lib's conventions (default compatibility mode).

Each function returns an array as long as its input with ``nan`` before the first value
TA-Lib would output (its "lookback"):

* EMA(n): seeded with the simple mean of the first ``n`` values, then
  ``ema += k × (x − ema)`` with ``k = 2 / (n + 1)``; first value at index ``n − 1``.
* RSI(n): Wilder's smoothing seeded with the simple means of the first ``n`` gains and
  losses; first value at index ``n``; 0 when there was no movement at all (as TA-Lib).
* ATR(n): true range from the second bar on; seeded with the mean of the first ``n``
  true ranges, then Wilder's smoothing; first value at index ``n``.
* MACD(12, 26, 9): both EMAs are seeded so that they start on the same bar (index
  ``slow − 1``), the way TA-Lib does it — the fast EMA is *not* the standalone EMA(12).
  The signal line is an EMA of the MACD line; all three outputs start at index
  ``slow + signal − 2``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def _nan(length: int) -> Array:
    return np.full(length, np.nan, dtype=np.float64)


def _ema_from(values: Array, period: int, seed_start: int) -> Array:
    """EMA seeded with the mean of ``values[seed_start : seed_start + period]``."""
    out = _nan(len(values))
    first = seed_start + period - 1
    if period < 1 or first >= len(values):
        return out
    k = 2.0 / (period + 1)
    acc = float(np.mean(values[seed_start : first + 1]))
    out[first] = acc
    for i in range(first + 1, len(values)):
        acc += k * (values[i] - acc)
        out[i] = acc
    return out


def ema(values: Array, period: int) -> Array:
    return _ema_from(np.asarray(values, dtype=np.float64), period, 0)


def rsi(values: Array, period: int) -> Array:
    closes = np.asarray(values, dtype=np.float64)
    out = _nan(len(closes))
    if period < 1 or len(closes) <= period:
        return out
    deltas = np.diff(closes)
    gains = np.where(deltas > 0, deltas, 0.0)
    losses = np.where(deltas < 0, -deltas, 0.0)
    avg_gain = float(np.mean(gains[:period]))
    avg_loss = float(np.mean(losses[:period]))

    def value(g: float, loss: float) -> float:
        total = g + loss
        return 100.0 * g / total if total != 0 else 0.0

    out[period] = value(avg_gain, avg_loss)
    for i in range(period, len(deltas)):
        avg_gain = (avg_gain * (period - 1) + gains[i]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i]) / period
        out[i + 1] = value(avg_gain, avg_loss)
    return out


def true_range(high: Array, low: Array, close: Array) -> Array:
    h = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    out = _nan(len(h))
    if len(h) < 2:
        return out
    prev = c[:-1]
    out[1:] = np.maximum(h[1:], prev) - np.minimum(lo[1:], prev)
    return out


def atr(high: Array, low: Array, close: Array, period: int) -> Array:
    tr = true_range(high, low, close)
    out = _nan(len(tr))
    if period < 1 or len(tr) <= period:
        return out
    acc = float(np.mean(tr[1 : period + 1]))
    out[period] = acc
    for i in range(period + 1, len(tr)):
        acc = (acc * (period - 1) + tr[i]) / period
        out[i] = acc
    return out


def macd(
    values: Array, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[Array, Array, Array]:
    """(macd line, signal line, histogram)."""
    closes = np.asarray(values, dtype=np.float64)
    if fast > slow:
        fast, slow = slow, fast
    n = len(closes)
    line = _nan(n)
    sig = _nan(n)
    hist = _nan(n)
    start = slow - 1  # both EMAs' first bar
    if n <= start:
        return line, sig, hist
    slow_ema = _ema_from(closes, slow, 0)
    fast_ema = _ema_from(closes, fast, start - fast + 1)
    line[start:] = fast_ema[start:] - slow_ema[start:]
    signal_line = _ema_from(line, signal, start)
    first = start + signal - 1
    if first >= n:
        return _nan(n), sig, hist
    sig[first:] = signal_line[first:]
    out_line = _nan(n)
    out_line[first:] = line[first:]
    hist[first:] = out_line[first:] - sig[first:]
    return out_line, sig, hist
