"""SimVenue signers: nonces, API agents, vault leaders, userRole/extraAgents; scheduleCancel."""

from __future__ import annotations

import pytest

from infrastructure.simulator.engine import AgentApprovalError, SimVenue
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BOB,
    ETH,
    T0,
    D,
    limit,
    one,
    open_oids,
    place,
    prices,
    status_of,
    venue,
)

DAY = 86_400_000
SIGNER = "0x" + "5" * 40
AGENT_1 = "0x" + "c1" * 20
AGENT_2 = "0x" + "c2" * 20
VAULT = "0x" + "d4" * 20
ZERO = "0x" + "0" * 40
STRANGER = "0x" + "e5" * 20

# -- nonces --------------------------------------------------------------------------------------


def test_a_nonce_is_used_once() -> None:
    sim = venue()
    assert sim.use_nonce(SIGNER, T0) is None
    assert sim.use_nonce(SIGNER, T0) == f"Invalid nonce: duplicate nonce {T0}"
    assert sim.use_nonce(AGENT_1, T0) is None  # nonces are per signer
    assert sim.use_nonce(SIGNER.upper().replace("0X", "0x"), T0).startswith("Invalid nonce: dup")  # type: ignore[union-attr]


def test_nonces_must_lie_within_two_days_back_and_one_day_ahead() -> None:
    sim = venue()
    low, high = T0 - 2 * DAY, T0 + DAY
    assert sim.use_nonce(SIGNER, low) == f"Invalid nonce: nonce too low {low} < {low}"
    assert sim.use_nonce(SIGNER, low + 1) is None
    assert sim.use_nonce(SIGNER, high) == f"Invalid nonce: nonce too high {high} > {high}"
    assert sim.use_nonce(SIGNER, high - 1) is None


def test_the_hundred_highest_nonces_are_kept() -> None:
    sim = venue()
    for n in range(1, 101):
        assert sim.use_nonce(SIGNER, T0 + n) is None
    assert sim.use_nonce(SIGNER, T0) == f"Invalid nonce: nonce too low {T0} < {T0 + 1}"
    assert sim.use_nonce(SIGNER, T0 + 50) == f"Invalid nonce: duplicate nonce {T0 + 50}"
    assert sim.use_nonce(SIGNER, T0 + 101) is None  # drops T0 + 1
    assert sim.use_nonce(SIGNER, T0 + 1) == f"Invalid nonce: nonce too low {T0 + 1} < {T0 + 2}"


def test_fewer_than_a_hundred_nonces_accept_any_unused_one_in_the_window() -> None:
    sim = venue()
    assert sim.use_nonce(SIGNER, T0 + 10) is None
    assert sim.use_nonce(SIGNER, T0 + 5) is None


def test_the_window_follows_venue_time() -> None:
    sim = venue()
    assert sim.use_nonce(SIGNER, T0 + 2 * DAY) is not None
    sim.advance(T0 + 2 * DAY, prices({"ETH": "2000"}))
    assert sim.use_nonce(SIGNER, T0 + 2 * DAY) is None
    assert sim.use_nonce(SIGNER, T0) == f"Invalid nonce: nonce too low {T0} < {T0}"


# -- agents and vaults ---------------------------------------------------------------------------


def test_known_users_resolve_to_themselves_and_strangers_to_none() -> None:
    sim = venue()
    assert sim.resolve_signer(ALICE) == ALICE
    assert sim.resolve_signer(ALICE.upper().replace("0X", "0x")) == ALICE
    assert sim.resolve_signer(STRANGER) is None


def test_a_new_unnamed_agent_replaces_the_old_one() -> None:
    sim = venue()
    sim.approve_agent(ALICE, AGENT_1, None, None)
    assert sim.resolve_signer(AGENT_1) == ALICE
    sim.approve_agent(ALICE, AGENT_2, None, None)
    assert sim.resolve_signer(AGENT_1) is None
    assert sim.resolve_signer(AGENT_2) == ALICE


def test_named_agents_replace_by_name_and_the_zero_address_deletes() -> None:
    sim = venue()
    sim.approve_agent(ALICE, AGENT_1, "bot", None)
    sim.approve_agent(ALICE, AGENT_2, "bot", None)
    assert sim.resolve_signer(AGENT_1) is None
    assert sim.resolve_signer(AGENT_2) == ALICE
    sim.approve_agent(ALICE, ZERO, "bot", None)
    assert sim.resolve_signer(AGENT_2) is None


def test_at_most_three_named_agents_plus_one_unnamed() -> None:
    sim = venue()
    for n, name in enumerate(("a", "b", "c")):
        sim.approve_agent(ALICE, f"0x{n + 1:040x}", name, None)
    sim.approve_agent(ALICE, "0x" + "f" * 40, None, None)
    with pytest.raises(AgentApprovalError):
        sim.approve_agent(ALICE, "0x" + "e" * 40, "d", None)
    sim.approve_agent(ALICE, "0x" + "e" * 40, "c", None)  # replacing a name is fine
    assert sim.resolve_signer("0x" + "e" * 40) == ALICE


def test_expired_agents_do_not_resolve() -> None:
    sim = venue()
    sim.approve_agent(ALICE, AGENT_1, "day", T0 + 1000)
    assert sim.resolve_signer(AGENT_1) == ALICE
    sim.advance(T0 + 1000, prices({"ETH": "2000"}))
    assert sim.resolve_signer(AGENT_1) is None
    assert sim.info({"type": "extraAgents", "user": ALICE}) == []


def test_vault_actions_resolve_to_the_vault_for_its_leader_only() -> None:
    sim = venue(users=(ALICE, BOB))
    sim.set_vault_leader(VAULT, ALICE)
    sim.approve_agent(ALICE, AGENT_1, None, None)
    assert sim.resolve_signer(ALICE, VAULT) == VAULT
    assert sim.resolve_signer(AGENT_1, VAULT) == VAULT
    assert sim.resolve_signer(BOB, VAULT) is None
    assert sim.resolve_signer(STRANGER, VAULT) is None


def test_user_role_and_extra_agents() -> None:
    sim = venue()
    sim.set_vault_leader(VAULT, ALICE)
    sim.approve_agent(ALICE, AGENT_1, None, None)
    sim.approve_agent(ALICE, AGENT_2, "named", T0 + DAY)

    def role(user: str) -> object:
        return sim.info({"type": "userRole", "user": user})

    assert role(ALICE) == {"role": "user"}
    assert role(AGENT_1) == {"role": "agent", "data": {"user": ALICE}}
    assert role(VAULT) == {"role": "vault"}
    assert role(STRANGER) == {"role": "missing"}
    assert sim.info({"type": "extraAgents", "user": ALICE}) == [
        {"name": "named", "address": AGENT_2, "validUntil": T0 + DAY}
    ]


# -- scheduleCancel ------------------------------------------------------------------------------


def schedule(sim: SimVenue, time: int | None) -> dict[str, object]:
    action: dict[str, object] = {"type": "scheduleCancel"}
    if time is not None:
        action["time"] = time
    return sim.exchange(ALICE, action)


OK = {"status": "ok", "response": {"type": "default"}}


def test_a_scheduled_cancel_cancels_every_open_order_at_its_time() -> None:
    sim = venue()
    place(sim, limit(ETH, True, "1990", "1"), limit(ETH, False, "2010", "1"))
    assert schedule(sim, T0 + 4999) == {
        "status": "err",
        "response": "Scheduled cancel time must be at least 5 seconds in the future.",
    }
    assert schedule(sim, T0 + 10_000) == OK
    sim.advance(T0 + 9_999, prices({"ETH": "2000"}))
    assert open_oids(sim) == [1, 2]
    sim.advance(T0 + 10_000, prices({"ETH": "2000"}))
    assert open_oids(sim) == []
    assert status_of(sim, 1) == status_of(sim, 2) == "scheduledCancel"


def test_an_empty_schedule_cancel_removes_it() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "1990", "1"))
    assert schedule(sim, T0 + 10_000) == OK
    assert schedule(sim, None) == OK
    sim.advance(T0 + 20_000, prices({"ETH": "2000"}))
    assert open_oids(sim) == [1]


def test_at_most_ten_scheduled_cancels_fire_a_day() -> None:
    sim = venue()
    now = T0
    for _ in range(10):
        assert schedule(sim, now + 5_000) == OK
        now += 5_000
        sim.advance(now, prices({"ETH": "2000"}))
    assert schedule(sim, now + 5_000) == {
        "status": "err",
        "response": "Too many scheduled cancels triggered today.",
    }


def test_scheduled_cancel_is_gated_on_traded_volume() -> None:
    sim = venue(schedule_cancel_min_volume=D(1_000_000))
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))  # 2001 USD traded
    assert schedule(sim, T0 + 10_000) == {
        "status": "err",
        "response": (
            "Cannot set scheduled cancel time until enough volume traded. "
            "Required: $1000000. Traded: $2001.00."
        ),
    }
