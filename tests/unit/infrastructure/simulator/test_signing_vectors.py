"""The gateway's signature checks against recorded vectors (``shared/contracts/hyperliquid/
signing_vectors.json``): the SDK's own test vectors and 15 exact SDK ``/exchange`` bodies.

The verdict is made observable through the venue: the recorded signer is funded, so a body
that recovers to it is *not* answered "does not exist"/"Must deposit"; a body with one byte of
its action changed must be refused naming a *different* recovered address. For the SDK's
vectors the venue is left empty, so the refusal names the recovered address itself.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_hex
from hyperliquid.utils.signing import action_hash

from infrastructure.simulator.config import SimConfig
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.gateway import SimGateway
from tests.support.sim_server import MIDS

BODIES = 15
REFUSED = re.compile(
    r"(?:User or API Wallet (0x[0-9a-f]{40}) does not exist\."
    r"|Must deposit before performing actions\. User: (0x[0-9a-f]{40}))"
)


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, Any]:
    path = shared_dir / "contracts" / "hyperliquid" / "signing_vectors.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _gateway(now_ms: int, *, is_mainnet: bool = False) -> SimGateway:
    gateway = SimGateway(SimVenue.open(SimConfig(), None), is_mainnet=is_mainnet)
    gateway.advance(now_ms, MIDS)
    return gateway


def _refused_as(answer: Any) -> str | None:
    """The recovered address a whole-action refusal names, if it is one."""
    if not isinstance(answer, dict) or answer.get("status") != "err":
        return None
    found = REFUSED.fullmatch(str(answer.get("response")))
    return None if found is None else (found.group(1) or found.group(2))


def _one_byte_changed(action: dict[str, Any]) -> dict[str, Any]:
    """The action with one byte of its JSON text changed (the first digit, or else the last
    letter), still valid JSON."""
    text = json.dumps(action, separators=(",", ":"))
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    if digits:
        at = digits[0]
        digit = int(text[at])
        byte = str(digit + 1 if digit < 9 else digit - 1)
    else:
        at = max(i for i, ch in enumerate(text) if "a" <= ch <= "z")
        byte = "y" if text[at] == "z" else chr(ord(text[at]) + 1)
    changed = text[:at] + byte + text[at + 1 :]
    result: dict[str, Any] = json.loads(changed)
    assert result != action
    return result


def test_the_recorded_signer_is_the_test_key(vectors: dict[str, Any]) -> None:
    expected = Account.from_key(vectors["test_private_key"]).address
    assert expected == vectors["test_wallet_address"]
    bodies = vectors["computed_vectors"]["exchange_bodies_frozen_nonce"]["bodies"]
    assert len(bodies) == BODIES
    assert {b["recovered_signer_testnet"] for b in bodies} == {expected}


@pytest.mark.parametrize("index", range(BODIES))
def test_sdk_body_recovers_to_its_signer(vectors: dict[str, Any], index: int) -> None:
    entry = vectors["computed_vectors"]["exchange_bodies_frozen_nonce"]["bodies"][index]
    body = entry["json_body"]
    signer = entry["recovered_signer_testnet"].lower()
    gateway = _gateway(body["nonce"])

    status, unfunded = gateway.handle("/exchange", copy.deepcopy(body))
    assert status == 200
    assert _refused_as(unfunded) == signer, unfunded  # the refusal names the recovered signer

    gateway.fund(signer, Decimal(1_000_000))
    status, answer = gateway.handle("/exchange", copy.deepcopy(body))
    assert status == 200
    assert _refused_as(answer) is None, f"{entry['label']}: {answer}"
    assert answer != {"status": "err", "response": "Unable to recover signer."}

    tampered = copy.deepcopy(body)
    tampered["action"] = _one_byte_changed(body["action"])
    tampered["nonce"] = body["nonce"] + 1  # a fresh nonce: only the signer can be wrong
    status, refused = gateway.handle("/exchange", tampered)
    assert status == 200
    other = _refused_as(refused)
    assert other is not None, f"{entry['label']}: {refused}"
    assert other != signer


@pytest.mark.parametrize("network", ["mainnet", "testnet"])
def test_sdk_l1_vectors_recover_through_the_gateway(vectors: dict[str, Any], network: str) -> None:
    checked = 0
    for vector in vectors["sdk_test_vectors"]:
        if vector.get("kind") != "l1_action":
            continue
        inputs = vector["inputs"]
        expected_hash = action_hash(
            inputs["action"], inputs["vault_address"], inputs["nonce"], inputs["expires_after"]
        )
        assert to_hex(expected_hash) == vector["action_hash"], vector["name"]
        gateway = _gateway(1_700_000_000_000, is_mainnet=network == "mainnet")
        body = {
            "action": inputs["action"],
            "nonce": inputs["nonce"],
            "signature": vector["expected_signature"][network],
            "vaultAddress": inputs["vault_address"],
            "expiresAfter": inputs["expires_after"],
        }
        status, answer = gateway.handle("/exchange", body)
        assert status == 200
        assert _refused_as(answer) == vector["recovered_address"][network].lower(), vector["name"]
        checked += 1
    assert checked >= 8


def test_sdk_user_signed_vectors_recover_through_the_gateway(vectors: dict[str, Any]) -> None:
    checked = 0
    for vector in vectors["sdk_test_vectors"]:
        if vector.get("kind") != "user_signed_action":
            continue
        message = vector["message_as_signed_and_posted"]
        kind = {"UsdSend": "usdSend", "Withdraw": "withdraw3"}[vector["primary_type"].split(":")[1]]
        action = {**message, "type": kind}
        body = {
            "action": action,
            "nonce": message["time"],
            "signature": vector["expected_signature"]["testnet"],
            "vaultAddress": None,
            "expiresAfter": None,
        }
        status, answer = _gateway(message["time"]).handle("/exchange", body)
        assert status == 200
        assert _refused_as(answer) == vector["recovered_address"]["testnet"].lower()
        checked += 1
    assert checked == 2


def test_phantom_agent_vector(vectors: dict[str, Any]) -> None:
    vector = vectors["sdk_test_vectors"][0]
    assert vector["name"] == "test_phantom_agent_creation_matches_production"
    inputs = vector["inputs"]
    digest = action_hash(vector["action_wire"], None, inputs["nonce"], None)
    assert to_hex(digest) == vector["expected"]["connectionId"]
