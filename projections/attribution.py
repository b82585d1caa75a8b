"""Where a run's P&L came from: market exposure, leverage, fees, funding and the rest.

Pure, like ``projections.statistics``; Decimal in and out, float64 only for the regression.

How it is computed, over an equity curve ``E_0..E_n`` sampled on a regular grid (with the
capital flows ``F_t`` moved in during each period) and the BTC price ``P_t`` at the same
times:

1. ``total = E_n − E_0 − Σ F_t`` (flows are capital, not P&L).
2. Period returns ``r_t = (E_t − F_t) / E_{t−1} − 1`` and BTC returns ``b_t = P_t / P_{t−1} − 1``;
   ``beta`` is the OLS slope of ``r`` on ``b`` with an intercept (0 when BTC did not move
   or fewer than two periods exist).
3. The dollars a 1× BTC exposure of the equity would have made: ``m = Σ b_t · E_{t−1}``.
   **Market exposure** is what an unlevered beta would have made, ``clip(beta, −1, 1) · m``;
   **leverage** is what the beta beyond ±1 (exposure bought with borrowed notional) added,
   ``(beta − clip(beta, −1, 1)) · m``. Both are rounded to 1e-8 dollars.
4. **Fees** = −(fees paid), **funding** = funding received (+) or paid (−), as booked.
5. **Residual** (decision skill: timing, selection, everything beta does not explain) =
   ``total − market − leverage − fees − funding``, computed in Decimal, so the five parts add
   up to ``total`` exactly.

Leverage is split off only the market part: the residual of a levered trader includes the
leverage it applied to its own bets, which a curve alone cannot tell apart from skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

MONEY_STEP = Decimal("1e-8")


@dataclass(frozen=True)
class PnlAttribution:
    total: Decimal
    market: Decimal
    leverage: Decimal
    fees: Decimal
    funding: Decimal
    residual: Decimal
    beta: float

    def parts(self) -> dict[str, Decimal]:
        return {
            "market": self.market,
            "leverage": self.leverage,
            "fees": self.fees,
            "funding": self.funding,
            "residual": self.residual,
        }


def ols_beta(returns: Sequence[float], benchmark: Sequence[float]) -> float:
    """Slope of ``returns`` on ``benchmark`` (with an intercept); 0 when it is undefined."""
    y = np.asarray(returns, dtype=np.float64)
    x = np.asarray(benchmark, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    dx = x - x.mean()
    variance = float(dx @ dx)
    if variance <= 0:
        return 0.0
    return float(dx @ (y - y.mean())) / variance


def attribute_pnl(
    equity: Sequence[Decimal],
    btc: Sequence[Decimal],
    *,
    fees_paid: Decimal,
    funding: Decimal,
    flows: Sequence[Decimal] = (),
) -> PnlAttribution:
    """Split the curve's P&L (see the module docstring for every step)."""
    if len(btc) != len(equity):
        raise ValueError("attribution needs one BTC price per equity value")
    if flows and len(flows) != len(equity):
        raise ValueError("attribution needs one flow per equity value, or none")
    if not equity:
        total = Decimal(0)
        beta = 0.0
        market_move = 0.0
    else:
        moved = list(flows[1:]) if flows else [Decimal(0)] * (len(equity) - 1)
        total = equity[-1] - equity[0] - sum(moved, Decimal(0))
        start = np.asarray([float(e) for e in equity[:-1]], dtype=np.float64)
        end = np.asarray([float(e - f) for e, f in zip(equity[1:], moved, strict=True)])
        prices = np.asarray([float(p) for p in btc], dtype=np.float64)
        usable = start > 0
        returns = np.where(usable, end / np.where(usable, start, 1.0) - 1.0, 0.0)
        benchmark = prices[1:] / prices[:-1] - 1.0 if len(prices) > 1 else np.zeros(0)
        beta = ols_beta(list(returns[usable]), list(benchmark[usable]))
        market_move = float(benchmark @ start) if len(start) else 0.0
    unlevered = max(-1.0, min(1.0, beta))
    market = _money(unlevered * market_move)
    leverage = _money((beta - unlevered) * market_move)
    fees = -fees_paid
    residual = total - market - leverage - fees - funding
    return PnlAttribution(
        total=total,
        market=market,
        leverage=leverage,
        fees=fees,
        funding=funding,
        residual=residual,
        beta=beta,
    )


def _money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(MONEY_STEP)
