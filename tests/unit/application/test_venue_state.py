"""Which trader holds which coin on a shared account, and the per-version cache of it."""

from __future__ import annotations

from application.venue_state import HeldCoins, held_coins, holders
from tests.unit.domain.test_trader import ask, at, entry_order, register


def test_held_coins_follow_each_new_event_and_each_new_copy() -> None:
    alpha, beta = register("alpha"), register("beta")
    held = HeldCoins()
    assert holders([alpha, beta], held) == {}
    cycle = ask(alpha, 1)
    alpha.place(cycle_id=cycle, cloid="0x" + "1" * 32, order=entry_order("BTC"), at=at(1))
    assert held(alpha) == ["BTC"]  # the pending order counts, seen at the new version
    assert holders([beta, alpha], held) == {"BTC": "alpha"}
    again = ask(beta, 2)
    beta.place(cycle_id=again, cloid="0x" + "2" * 32, order=entry_order("ETH"), at=at(2))
    assert holders([alpha, beta], held) == {"BTC": "alpha", "ETH": "beta"}
    fresh = register("alpha")  # another copy of alpha (reloaded): its own holdings
    assert held(fresh) == []
    assert holders([fresh, beta], held) == holders([fresh, beta]) == {"ETH": "beta"}
    assert held(alpha) == held_coins(alpha) == ["BTC"]
