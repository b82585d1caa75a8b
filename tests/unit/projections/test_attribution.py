"""P&L attribution: a hand-computed split, and the parts always add up to the total."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.attribution import attribute_pnl, ols_beta

D = Decimal


def test_a_twice_levered_btc_trader_by_hand() -> None:
    # BTC +20 % then flat; the trader +40 % then flat: beta 2. A 1× exposure would have made
    # 0.2 · 100 + 0 · 140 = 20: 20 of market exposure, 20 more from leverage.
    split = attribute_pnl(
        [D(100), D(140), D(140)],
        [D(10), D(12), D(12)],
        fees_paid=D(3),
        funding=D(-2),
    )
    assert split.beta == pytest.approx(2.0)
    assert split.total == 40
    assert split.market == 20
    assert split.leverage == 20
    assert split.fees == -3
    assert split.funding == -2
    assert split.residual == 5  # 40 − 20 − 20 + 3 + 2


def test_an_unlevered_trader_has_no_leverage_part() -> None:
    split = attribute_pnl(
        [D(100), D(105), D(100)], [D(100), D(110), D(100)], fees_paid=D(0), funding=D(0)
    )
    assert 0 < split.beta < 1
    assert split.leverage == 0


def test_flows_are_not_pnl() -> None:
    split = attribute_pnl(
        [D(100), D(200), D(210)],
        [D(1), D(1), D(1)],
        fees_paid=D(1),
        funding=D(0),
        flows=[D(0), D(100), D(0)],
    )
    assert split.total == 10
    assert split.beta == 0  # BTC did not move: nothing is market
    assert split.market == split.leverage == 0
    assert split.residual == 11


def test_beta_is_the_ols_slope() -> None:
    assert ols_beta([0.02, -0.04, 0.06], [0.01, -0.02, 0.03]) == pytest.approx(2.0)
    assert ols_beta([0.1, 0.2], [0.0, 0.0]) == 0.0
    assert ols_beta([0.1], [0.2]) == 0.0


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="BTC price"):
        attribute_pnl([D(1), D(2)], [D(1)], fees_paid=D(0), funding=D(0))


money = st.decimals(min_value=D(1), max_value=D(1_000_000), places=4)
signed = st.decimals(min_value=D(-10_000), max_value=D(10_000), places=6)


@given(
    st.lists(st.tuples(money, money, signed), min_size=0, max_size=60),
    st.decimals(min_value=D(0), max_value=D(10_000), places=6),
    signed,
    st.booleans(),
)
def test_the_parts_sum_to_the_total(
    rows: list[tuple[Decimal, Decimal, Decimal]], fees: Decimal, funding: Decimal, use_flows: bool
) -> None:
    equity = [row[0] for row in rows]
    btc = [row[1] for row in rows]
    flows = [row[2] for row in rows] if use_flows else []
    split = attribute_pnl(equity, btc, fees_paid=fees, funding=funding, flows=flows)
    assert sum(split.parts().values(), D(0)) == split.total
    expected = equity[-1] - equity[0] - sum(flows[1:], D(0)) if equity else D(0)
    assert split.total == expected
