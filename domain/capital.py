"""Capital follows performance: the ``performance_based`` allocation rule.

Each trader's score comes from its KPIs: the Sharpe ratio of its hourly returns, its
drawdown from the peak, how much of its capital it uses, and what its model costs against
what it earned. The tradable pool (total equity less ``reserve_equity_pct``) is split in
proportion to the scores, then each trader moves towards its target by at most
``max_step_pct`` of its allocation per rebalance, never below the margin its open positions
need, and the pool is never exceeded: the reserve is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class TraderKPIs:
    trader: str
    allocation: Decimal
    equity: Decimal
    peak_equity: Decimal
    margin_used: Decimal
    sharpe: float
    returns: int  # hourly returns behind the Sharpe
    model_cost: Decimal
    net_pnl: Decimal  # realised and unrealised, net of fees and funding


@dataclass(frozen=True)
class CapitalPolicy:
    max_step_pct: Decimal = Decimal(20)  # of a trader's allocation per rebalance
    min_returns: int = 24  # hourly returns before the KPIs count
    margin_buffer: Decimal = Decimal("1.2")  # keep this multiple of the open margin


@dataclass(frozen=True)
class Reallocation:
    trader: str
    previous: Decimal
    allocation: Decimal
    inputs: dict[str, str]


def score(k: TraderKPIs, policy: CapitalPolicy) -> Decimal:
    """A positive weight; 1 for a trader without enough history."""
    if k.returns < policy.min_returns:
        return Decimal(1)
    sharpe = Decimal(str(max(-0.9, min(3.0, k.sharpe))))
    drawdown = ZERO if k.peak_equity <= 0 else max(ZERO, (k.peak_equity - k.equity) / k.peak_equity)
    utilisation = ZERO if k.equity <= 0 else min(Decimal(1), k.margin_used / k.equity)
    # A model that costs more than the trader earns weighs it down.
    cost_drag = ZERO
    if k.model_cost > 0 and k.allocation > 0:
        cost_drag = min(Decimal("0.5"), max(ZERO, k.model_cost - k.net_pnl) / k.allocation)
    weight = (1 + sharpe) * (1 - min(drawdown, Decimal("0.9"))) * (Decimal("0.8") + utilisation / 5)
    return max(Decimal("0.05"), weight * (1 - cost_drag))


def rebalance(
    kpis: list[TraderKPIs], *, pool: Decimal, policy: CapitalPolicy
) -> list[Reallocation]:
    """New allocations (only the ones that change), summing to at most ``pool``."""
    if not kpis or pool <= 0:
        return []
    scores = {k.trader: score(k, policy) for k in kpis}
    total_score = sum(scores.values(), ZERO)
    step = policy.max_step_pct / 100
    proposed: dict[str, Decimal] = {}
    floors: dict[str, Decimal] = {}
    for k in kpis:
        target = pool * scores[k.trader] / total_score
        lo, hi = k.allocation * (1 - step), k.allocation * (1 + step)
        margin_floor = k.margin_used * policy.margin_buffer
        # Scaling below never goes under the step bound or the margin the positions need.
        floors[k.trader] = max(margin_floor, lo)
        proposed[k.trader] = max(margin_floor, min(hi, max(lo, target)))
    total = sum(proposed.values(), ZERO)
    if total > pool:
        # Scale the part above each floor down until the pool holds (floors are kept).
        above = sum((proposed[t] - floors[t] for t in proposed), ZERO)
        excess = total - pool
        factor = ZERO if above <= 0 else max(ZERO, 1 - excess / above)
        proposed = {t: floors[t] + (proposed[t] - floors[t]) * factor for t in proposed}
    out = []
    for k in kpis:
        new = proposed[k.trader].quantize(CENT, rounding=ROUND_DOWN)
        if new == k.allocation:
            continue
        out.append(
            Reallocation(
                trader=k.trader,
                previous=k.allocation,
                allocation=new,
                inputs={
                    "score": f"{scores[k.trader]:.4f}",
                    "sharpe": f"{k.sharpe:.4f}",
                    "returns": str(k.returns),
                    "equity": str(k.equity),
                    "peak_equity": str(k.peak_equity),
                    "margin_used": str(k.margin_used),
                    "model_cost": str(k.model_cost),
                    "net_pnl": str(k.net_pnl),
                    "pool": str(pool),
                    "max_step_pct": str(policy.max_step_pct),
                },
            )
        )
    return out
