"""Capital follows performance: bounded steps, the reserve untouched, margin kept."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.capital import CapitalPolicy, TraderKPIs, rebalance, score

D = Decimal
POLICY = CapitalPolicy(max_step_pct=D(20), min_returns=24)


def kpis(trader: str, *, allocation: int = 1000, sharpe: float = 0.0, **kw: object) -> TraderKPIs:
    values: dict[str, object] = {
        "trader": trader,
        "allocation": D(allocation),
        "equity": D(allocation),
        "peak_equity": D(allocation),
        "margin_used": D(0),
        "sharpe": sharpe,
        "returns": 100,
        "model_cost": D(0),
        "net_pnl": D(0),
    }
    values.update(kw)
    return TraderKPIs(**values)  # type: ignore[arg-type]


def test_the_better_trader_gets_more_within_the_step_bound() -> None:
    changes = {
        c.trader: c
        for c in rebalance(
            [kpis("good", sharpe=2.0), kpis("bad", sharpe=-0.5)], pool=D(2000), policy=POLICY
        )
    }
    assert changes["good"].allocation == D(1200)  # +20 %, the bound
    assert changes["bad"].allocation == D(800)  # −20 %
    assert changes["good"].inputs["sharpe"] == "2.0000"
    assert "score" in changes["good"].inputs


def test_no_history_no_move() -> None:
    assert (
        rebalance(
            [kpis("a", sharpe=3.0, returns=3), kpis("b", sharpe=-1.0, returns=3)],
            pool=D(2000),
            policy=POLICY,
        )
        == []
    )


def test_an_expensive_model_that_earns_nothing_weighs_its_trader_down() -> None:
    cheap = score(kpis("a"), POLICY)
    costly = score(kpis("b", model_cost=D(200)), POLICY)
    assert costly < cheap


def test_never_below_the_margin_open_positions_need() -> None:
    changes = {
        c.trader: c
        for c in rebalance(
            [kpis("good", sharpe=3.0), kpis("busy", sharpe=-0.9, margin_used=D(900))],
            pool=D(2000),
            policy=POLICY,
        )
    }
    assert changes.get("busy") is None or changes["busy"].allocation >= D(900) * D("1.2")


@given(
    st.lists(
        st.tuples(
            st.integers(100, 5000),
            st.floats(-3, 5, allow_nan=False),
            st.integers(0, 300),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_pool_is_never_exceeded_and_steps_are_bounded(
    rows: list[tuple[int, float, int]],
) -> None:
    traders = [
        kpis(f"t{i}", allocation=alloc, sharpe=sharpe, returns=returns)
        for i, (alloc, sharpe, returns) in enumerate(rows)
    ]
    pool = sum((t.allocation for t in traders), D(0))
    changes = {c.trader: c.allocation for c in rebalance(traders, pool=pool, policy=POLICY)}
    after = {t.trader: changes.get(t.trader, t.allocation) for t in traders}
    assert sum(after.values(), D(0)) <= pool
    for t in traders:
        assert abs(after[t.trader] - t.allocation) <= t.allocation * D("0.2") + D("0.01")
