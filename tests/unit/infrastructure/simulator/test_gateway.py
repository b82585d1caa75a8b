"""SimGateway: Hyperliquid's request semantics (shapes, signatures, signers, nonces, expiry,
agents, transfers, weights) in front of the simulated venue, without HTTP."""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.utils.signing import USD_SEND_SIGN_TYPES, sign_usd_transfer_action

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.errors import DESERIALIZE
from infrastructure.simulator.gateway import (
    AGENT_VALIDITY,
    EXPIRED,
    TRANSFERS_DISABLED,
    UNRECOVERABLE,
    SimGateway,
    request_weight,
)
from tests.support.sim_server import MIDS, approve_agent_body, l1_body, order_action

T0 = 1_700_000_000_000
DAY_MS = 86_400_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gateway() -> SimGateway:
    gw = SimGateway(SimVenue.open(SimConfig(), None))
    gw.advance(T0, MIDS)
    return gw


@pytest.fixture
def master(gateway: SimGateway) -> LocalAccount:
    wallet: LocalAccount = Account.create()
    gateway.fund(wallet.address, Decimal(100_000))
    return wallet


def exchange(gateway: SimGateway, body: dict[str, Any]) -> Any:
    status, answer = gateway.handle("/exchange", body)
    assert status == 200, answer
    return answer


def err_text(answer: Any) -> str:
    assert answer["status"] == "err", answer
    text = answer["response"]
    assert isinstance(text, str)
    return text


def open_orders(gateway: SimGateway, user: str) -> list[dict[str, Any]]:
    status, answer = gateway.handle("/info", {"type": "openOrders", "user": user})
    assert status == 200
    result: list[dict[str, Any]] = answer
    return result


# -- /info -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [None, [], "allMids", {}, {"type": 3}, {"type": "noSuchThing"}, {"type": "clearinghouseState"}],
)
def test_info_bad_shapes_answer_422_text(gateway: SimGateway, body: Any) -> None:
    assert gateway.handle("/info", body) == (422, DESERIALIZE)


def test_info_passes_through(gateway: SimGateway) -> None:
    status, mids = gateway.handle("/info", {"type": "allMids", "dex": ""})
    assert status == 200
    assert mids["BTC"] == "100000.0"


def test_unknown_path_is_404(gateway: SimGateway) -> None:
    assert gateway.handle("/other", {}) == (404, None)


# -- /exchange shapes ----------------------------------------------------------------------------


def _valid(master: LocalAccount) -> dict[str, Any]:
    return l1_body(master, order_action(), T0)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("action"),
        lambda b: b.update(action=[1]),
        lambda b: b.update(action={"orders": []}),
        lambda b: b.pop("nonce"),
        lambda b: b.update(nonce=True),
        lambda b: b.update(nonce=-1),
        lambda b: b.update(nonce=1 << 64),
        lambda b: b.update(nonce="1700000000000"),
        lambda b: b.pop("signature"),
        lambda b: b["signature"].pop("r"),
        lambda b: b["signature"].update(s="zz"),
        lambda b: b["signature"].update(r="0x" + "1" * 65),
        lambda b: b["signature"].update(v="27"),
        lambda b: b.update(vaultAddress="0x1234"),
        lambda b: b.update(expiresAfter=1.5),
    ],
)
def test_exchange_bad_shapes_answer_422(
    gateway: SimGateway, master: LocalAccount, mutate: Any
) -> None:
    body = _valid(master)
    mutate(body)
    assert gateway.handle("/exchange", body) == (422, DESERIALIZE)
    assert open_orders(gateway, master.address) == []


def test_not_an_object_is_422(gateway: SimGateway) -> None:
    assert gateway.handle("/exchange", [1, 2]) == (422, DESERIALIZE)
    assert gateway.handle("/exchange", None) == (422, DESERIALIZE)


# -- signatures and signers --------------------------------------------------------------------


def test_signed_order_is_placed_for_the_signer(gateway: SimGateway, master: LocalAccount) -> None:
    answer = exchange(gateway, _valid(master))
    assert answer["status"] == "ok"
    assert "resting" in answer["response"]["data"]["statuses"][0]
    assert [o["limitPx"] for o in open_orders(gateway, master.address)] == ["90000.0"]


def test_unknown_signer_is_named_with_the_recovered_address(gateway: SimGateway) -> None:
    stranger: LocalAccount = Account.create()
    text = err_text(exchange(gateway, l1_body(stranger, order_action(), T0)))
    assert text == f"User or API Wallet {stranger.address.lower()} does not exist."


def test_tampered_action_recovers_someone_else(gateway: SimGateway, master: LocalAccount) -> None:
    body = _valid(master)
    body["action"]["orders"][0]["p"] = "90001"  # signed 90000
    text = err_text(exchange(gateway, body))
    found = re.fullmatch(r"User or API Wallet (0x[0-9a-f]{40}) does not exist\.", text)
    assert found is not None
    assert found.group(1) != master.address.lower()
    assert open_orders(gateway, master.address) == []


def test_reordered_keys_change_the_hash(gateway: SimGateway, master: LocalAccount) -> None:
    """The action is hashed exactly as received: the same fields in another order are another
    message (what the SDK sends is never re-serialised)."""
    body = _valid(master)
    wire = body["action"]["orders"][0]
    body["action"]["orders"][0] = dict(reversed(list(wire.items())))
    assert "does not exist" in err_text(exchange(gateway, body))


@pytest.mark.parametrize(
    "signature", [{"r": "0x0", "s": "0x1", "v": 27}, {"r": "0x1", "s": "0x1", "v": 29}]
)
def test_unrecoverable_signature(gateway: SimGateway, master: LocalAccount, signature: Any) -> None:
    body = _valid(master)
    body["signature"] = signature
    assert err_text(exchange(gateway, body)) == UNRECOVERABLE


def test_mainnet_gateway_wants_mainnet_signatures(master: LocalAccount) -> None:
    gw = SimGateway(SimVenue.open(SimConfig(), None), is_mainnet=True)
    gw.advance(T0, MIDS)
    gw.fund(master.address, Decimal(100_000))
    testnet = exchange(gw, l1_body(master, order_action(), T0))
    assert "does not exist" in err_text(testnet)
    mainnet = exchange(gw, l1_body(master, order_action(), T0 + 1, is_mainnet=True))
    assert mainnet["status"] == "ok"


# -- expiry and nonces ---------------------------------------------------------------------------


def test_expires_after(gateway: SimGateway, master: LocalAccount) -> None:
    stale = l1_body(master, order_action(), T0, expires_after=T0 - 1)
    assert err_text(exchange(gateway, stale)) == EXPIRED
    fresh = l1_body(master, order_action(), T0 + 1, expires_after=T0 + 60_000)
    assert exchange(gateway, fresh)["status"] == "ok"


def test_nonce_rules(gateway: SimGateway, master: LocalAccount) -> None:
    assert exchange(gateway, l1_body(master, order_action(), T0))["status"] == "ok"
    again = exchange(gateway, l1_body(master, order_action(px="91000"), T0))
    assert err_text(again) == f"Invalid nonce: duplicate nonce {T0}"
    old = T0 - 3 * DAY_MS
    assert err_text(exchange(gateway, l1_body(master, order_action(), old))).startswith(
        f"Invalid nonce: nonce too low {old} <"
    )
    ahead = T0 + 2 * DAY_MS
    assert err_text(exchange(gateway, l1_body(master, order_action(), ahead))).startswith(
        f"Invalid nonce: nonce too high {ahead} >"
    )
    assert len(open_orders(gateway, master.address)) == 1


def test_nonce_is_spent_even_when_the_action_fails(
    gateway: SimGateway, master: LocalAccount
) -> None:
    bad = order_action(px="90000.5")  # six figures: a per-order error
    answer = exchange(gateway, l1_body(master, bad, T0))
    assert answer["response"]["data"]["statuses"][0] == {"error": "Order has invalid price."}
    assert "duplicate nonce" in err_text(exchange(gateway, l1_body(master, order_action(), T0)))


# -- agents ------------------------------------------------------------------------------------


def test_unnamed_agent_approved_by_signature_trades_for_its_master(
    gateway: SimGateway, master: LocalAccount
) -> None:
    agent: LocalAccount = Account.create()
    body = approve_agent_body(master, agent.address, None, T0)
    assert "agentName" not in body["action"]
    assert exchange(gateway, body) == {"status": "ok", "response": {"type": "default"}}
    assert gateway.resolve_signer(agent.address) == master.address.lower()
    assert exchange(gateway, l1_body(agent, order_action(), T0 + 1))["status"] == "ok"
    assert len(open_orders(gateway, master.address)) == 1
    assert open_orders(gateway, agent.address) == []


def test_named_agent_valid_until(gateway: SimGateway, master: LocalAccount) -> None:
    agent: LocalAccount = Account.create()
    until = T0 + 3_600_000
    body = approve_agent_body(master, agent.address, f"bot valid_until {until}", T0)
    assert exchange(gateway, body)["status"] == "ok"
    status, agents = gateway.handle("/info", {"type": "extraAgents", "user": master.address})
    assert status == 200
    assert agents == [{"name": "bot", "address": agent.address.lower(), "validUntil": until}]
    gateway.advance(until + 1)
    assert "does not exist" in err_text(exchange(gateway, l1_body(agent, order_action(), until)))


@pytest.mark.parametrize("until", [T0 - 1, T0 + 181 * DAY_MS])
def test_agent_validity_bounds(gateway: SimGateway, master: LocalAccount, until: int) -> None:
    body = approve_agent_body(master, Account.create().address, f"bot valid_until {until}", T0)
    assert err_text(exchange(gateway, body)) == AGENT_VALIDITY


def test_at_most_three_named_agents(gateway: SimGateway, master: LocalAccount) -> None:
    for n in range(3):
        body = approve_agent_body(master, Account.create().address, f"a{n}", T0 + n)
        assert exchange(gateway, body)["status"] == "ok"
    fourth = approve_agent_body(master, Account.create().address, "a3", T0 + 3)
    assert "Too many named agents" in err_text(exchange(gateway, fourth))


def test_only_a_funded_user_approves_agents(gateway: SimGateway, master: LocalAccount) -> None:
    stranger: LocalAccount = Account.create()
    body = approve_agent_body(stranger, Account.create().address, None, T0)
    text = err_text(exchange(gateway, body))
    assert text == f"Must deposit before performing actions. User: {stranger.address.lower()}"
    agent: LocalAccount = Account.create()
    gateway.approve_agent_trusted(master.address, agent.address, None)
    by_agent = approve_agent_body(agent, Account.create().address, None, T0)
    assert f"User: {agent.address.lower()}" in err_text(exchange(gateway, by_agent))


def test_approve_agent_bad_shape_is_422(gateway: SimGateway, master: LocalAccount) -> None:
    body = approve_agent_body(master, Account.create().address, None, T0)
    body["action"]["agentAddress"] = "nobody"
    assert gateway.handle("/exchange", body) == (422, DESERIALIZE)


def test_user_signed_nonce_must_match(gateway: SimGateway, master: LocalAccount) -> None:
    body = approve_agent_body(master, Account.create().address, None, T0)
    body["nonce"] = T0 + 1
    assert "differs" in err_text(exchange(gateway, body))


# -- transfers and vaults ----------------------------------------------------------------------


def _usd_send(wallet: LocalAccount, nonce: int) -> dict[str, Any]:
    action = {"destination": "0x" + "0" * 40, "amount": "1", "time": nonce, "type": "usdSend"}
    signature = sign_usd_transfer_action(wallet, action, False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}


def test_transfers_are_disabled_after_the_signature_check(
    gateway: SimGateway, master: LocalAccount
) -> None:
    assert USD_SEND_SIGN_TYPES  # the SDK's field list is what recovers it
    assert err_text(exchange(gateway, _usd_send(master, T0))) == TRANSFERS_DISABLED
    assert gateway.account_value(master.address) == Decimal(100_000)
    stranger: LocalAccount = Account.create()
    assert "Must deposit" in err_text(exchange(gateway, _usd_send(stranger, T0)))


def test_vault_trading(gateway: SimGateway, master: LocalAccount) -> None:
    vault = "0x" + "ab" * 20
    gateway.fund(vault, Decimal(50_000))
    outsider: LocalAccount = Account.create()
    gateway.fund(outsider.address, Decimal(1_000))
    gateway.set_vault_leader(vault, master.address)
    placed = exchange(gateway, l1_body(master, order_action(), T0, vault=vault))
    assert placed["status"] == "ok"
    assert len(open_orders(gateway, vault)) == 1
    assert open_orders(gateway, master.address) == []
    refused = exchange(gateway, l1_body(outsider, order_action(), T0, vault=vault))
    assert "does not exist" in err_text(refused)


# -- weights -------------------------------------------------------------------------------------


def test_request_weights() -> None:
    assert request_weight("/info", {"type": "allMids"}) == 2
    assert request_weight("/info", {"type": "exchangeStatus"}) == 2
    assert request_weight("/info", {"type": "userRole"}) == 60
    assert request_weight("/info", {"type": "metaAndAssetCtxs"}) == 20
    assert request_weight("/info", "garbage") == 20
    assert request_weight("/exchange", {"action": {"type": "order", "orders": [{}] * 39}}) == 1
    assert request_weight("/exchange", {"action": {"type": "order", "orders": [{}] * 40}}) == 2
    assert request_weight("/exchange", {"action": {"type": "cancel", "cancels": [{}] * 85}}) == 3
    assert request_weight("/exchange", None) == 1


def test_weight_budget_per_client_in_a_sliding_minute() -> None:
    clock = FakeClock()
    gw = SimGateway(SimVenue.open(SimConfig(), None), weight_per_minute=100, clock=clock)
    gw.advance(T0, MIDS)
    meta = {"type": "meta"}
    for _ in range(5):
        assert gw.handle("/info", meta, "1.2.3.4")[0] == 200  # 5 x 20 = the budget
    assert gw.handle("/info", meta, "1.2.3.4") == (429, None)
    assert gw.handle("/info", {"type": "allMids"}, "1.2.3.4") == (429, None)
    assert gw.handle("/info", meta, "5.6.7.8")[0] == 200  # another client
    assert gw.handle("/info", meta, "in-process")[0] == 200  # the engine is exempt
    clock.now += 59.9
    assert gw.handle("/info", meta, "1.2.3.4") == (429, None)  # refusals cost nothing...
    clock.now += 0.1
    assert gw.handle("/info", meta, "1.2.3.4")[0] == 200  # ...and the minute has passed


def test_retry_after_says_when_the_oldest_weight_frees() -> None:
    clock = FakeClock()
    gw = SimGateway(SimVenue.open(SimConfig(), None), weight_per_minute=60, clock=clock)
    gw.advance(T0, MIDS)
    meta = {"type": "meta"}
    assert gw.retry_after("c", "/info", meta) == 0  # nothing spent yet
    for step in range(3):
        assert gw.handle("/info", meta, "c")[0] == 200
        clock.now += 10 if step < 2 else 0
    assert gw.handle("/info", meta, "c") == (429, None)
    assert gw.retry_after("c", "/info", meta) == 40  # the first 20 frees 60 s after it
    clock.now += 39.5
    assert gw.retry_after("c", "/info", meta) == 1
    clock.now += 0.5
    assert gw.handle("/info", meta, "c")[0] == 200


def test_the_rate_limit_can_be_off() -> None:
    gw = SimGateway(SimVenue.open(SimConfig(), None), weight_per_minute=None)
    gw.advance(T0, MIDS)
    assert all(gw.handle("/info", {"type": "meta"}, "c")[0] == 200 for _ in range(100))
    assert gw.retry_after("c", "/info", {"type": "meta"}) == 0


def test_bad_requests_also_spend_weight() -> None:
    clock = FakeClock()
    gw = SimGateway(SimVenue.open(SimConfig(), None), weight_per_minute=40, clock=clock)
    assert gw.handle("/info", {"type": "nope"}, "c") == (422, DESERIALIZE)
    assert gw.handle("/info", {"type": "nope"}, "c") == (422, DESERIALIZE)
    assert gw.handle("/info", {"type": "nope"}, "c") == (429, None)


# -- failures and locking ----------------------------------------------------------------------


def test_engine_exception_is_500_null_and_logged(
    gateway: SimGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(gateway.venue, "info", broken)
    with caplog.at_level(logging.ERROR, logger="nof0.sim"):
        assert gateway.handle("/info", {"type": "allMids"}) == (500, None)
    assert any(r.exc_info and "engine bug" in str(r.exc_info[1]) for r in caplog.records)


def test_one_lock_serialises_venue_calls(gateway: SimGateway) -> None:
    done = threading.Event()

    def ask() -> None:
        gateway.handle("/info", {"type": "allMids"})
        done.set()

    with gateway.locked():
        worker = threading.Thread(target=ask)
        worker.start()
        assert not done.wait(0.2)  # blocked while the venue is held
    assert done.wait(5)
    worker.join()


def test_advance_and_configuration_wrappers(gateway: SimGateway) -> None:
    gateway.advance(T0 + 5_000, {"BTC": Decimal(101_000)})
    assert gateway.now_ms == T0 + 5_000
    assert gateway.handle("/info", {"type": "allMids"})[1]["BTC"] == "101000.0"
    user = "0x" + "cd" * 20
    assert gateway.resolve_signer(user) is None
    gateway.fund(user, Decimal(10))
    assert gateway.resolve_signer(user) == user
    assert gateway.account_value(user) == Decimal(10)
