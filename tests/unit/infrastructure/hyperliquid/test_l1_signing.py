"""The fixed-shape L1 signing gives the SDK's messages, signatures and signers exactly, and
fails where the SDK's path fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from hyperliquid.utils.signing import (
    action_hash,
    construct_phantom_agent,
    l1_payload,
    recover_agent_or_user_from_l1_action,
    sign_l1_action,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infrastructure.hyperliquid.l1_signing import l1_message, recover_l1, sign_l1

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"  # the SDK's test key
WALLET = Account.from_key(KEY)
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"

orders = st.fixed_dictionaries(
    {
        "a": st.integers(0, 200),
        "b": st.booleans(),
        "p": st.decimals(min_value="0.0001", max_value=100_000, places=4).map(lambda d: f"{d:f}"),
        "s": st.decimals(min_value="0.0001", max_value=1_000, places=4).map(lambda d: f"{d:f}"),
        "r": st.booleans(),
        "t": st.sampled_from([{"limit": {"tif": "Ioc"}}, {"limit": {"tif": "Gtc"}}]),
    }
)
actions = st.one_of(
    st.builds(
        lambda os, grouping: {"type": "order", "orders": os, "grouping": grouping},
        st.lists(orders, min_size=1, max_size=3),
        st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
    ),
    st.builds(
        lambda a, o: {"type": "cancel", "cancels": [{"a": a, "o": o}]},
        st.integers(0, 200),
        st.integers(0, 2**40),
    ),
    st.builds(
        lambda a, lev: {"type": "updateLeverage", "asset": a, "isCross": True, "leverage": lev},
        st.integers(0, 200),
        st.integers(1, 50),
    ),
)
vaults = st.one_of(st.none(), st.just(VAULT))
expiries = st.one_of(st.none(), st.integers(0, 2**63 - 1))
nonces = st.integers(0, 2**63 - 1)


def _sdk_message(
    action: dict[str, Any], vault: str | None, nonce: int, expires: int | None, mainnet: bool
) -> Any:
    agent = construct_phantom_agent(action_hash(action, vault, nonce, expires), mainnet)
    return encode_typed_data(full_message=l1_payload(agent))


@settings(max_examples=60, deadline=None)
@given(action=actions, vault=vaults, nonce=nonces, expires=expiries, mainnet=st.booleans())
@example(
    action={"type": "cancel", "cancels": [{"a": 0, "o": 0}]},
    vault=None,
    nonce=0,
    expires=None,
    mainnet=False,
)
def test_the_message_signature_and_signer_are_the_sdks(
    action: dict[str, Any], vault: str | None, nonce: int, expires: int | None, mainnet: bool
) -> None:
    assert l1_message(action, vault, nonce, expires, mainnet) == _sdk_message(
        action, vault, nonce, expires, mainnet
    )
    ours = sign_l1(WALLET, action, vault, nonce, expires, mainnet)
    assert ours == sign_l1_action(WALLET, action, vault, nonce, expires, mainnet)
    assert recover_l1(action, ours, vault, nonce, expires, mainnet) == WALLET.address
    assert recover_agent_or_user_from_l1_action(action, ours, vault, nonce, expires, mainnet) == (
        WALLET.address
    )


def test_another_network_or_nonce_recovers_another_signer() -> None:
    action = {"type": "cancel", "cancels": [{"a": 3, "o": 77}]}
    signature = sign_l1(WALLET, action, None, 5, None, False)
    assert recover_l1(action, signature, None, 5, None, True) != WALLET.address
    assert recover_l1(action, signature, None, 6, None, False) != WALLET.address


@pytest.mark.parametrize(
    "signature",
    [
        {"r": "0x0", "s": "0x0", "v": 27},
        {"r": "0x" + "ff" * 32, "s": "0x1", "v": 27},
        {"r": "0x1", "s": "0x1", "v": 5},
    ],
)
def test_a_bad_signature_fails_as_the_sdks_does(signature: dict[str, Any]) -> None:
    action = {"type": "cancel", "cancels": [{"a": 3, "o": 77}]}
    sdk = _raised(
        lambda: recover_agent_or_user_from_l1_action(action, signature, None, 1, None, False)
    )
    assert _raised(lambda: recover_l1(action, signature, None, 1, None, False)) is sdk


def _raised(call: Callable[[], object]) -> type[BaseException]:
    try:
        call()
    except (ValueError, TypeError, OverflowError, KeyError, BadSignature) as exc:
        return type(exc)
    raise AssertionError("a bad signature was recovered")
