"""Signatures run on libsecp256k1 (coincurve) and give exactly the bytes and signers of
eth_keys' pure-Python curve: the SDK's wire format does not change with the speed-up.
(The recorded SDK vectors are checked in ``test_signing_vectors.py``.)"""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_keys import KeyAPI
from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend, get_backend
from eth_keys.constants import SECPK1_N
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action, sign_l1_action
from hypothesis import given, settings
from hypothesis import strategies as st

FAST, PURE = KeyAPI(CoinCurveECCBackend()), KeyAPI(NativeECCBackend())


@pytest.mark.skipif("ECC_BACKEND_CLASS" in os.environ, reason="a backend is forced by the env")
def test_the_default_backend_is_libsecp256k1() -> None:
    assert isinstance(get_backend(), CoinCurveECCBackend)
    assert type(Account._keys.backend).__name__ == "CoinCurveECCBackend"


@settings(max_examples=40, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), digest=st.binary(min_size=32, max_size=32))
def test_both_curves_sign_and_recover_alike(secret: bytes, digest: bytes) -> None:
    number = int.from_bytes(secret, "big")
    if not 0 < number < SECPK1_N:  # not a private key
        return
    fast_key, pure_key = FAST.PrivateKey(secret), PURE.PrivateKey(secret)
    fast_sig, pure_sig = fast_key.sign_msg_hash(digest), pure_key.sign_msg_hash(digest)
    assert fast_sig.to_bytes() == pure_sig.to_bytes()  # RFC 6979: deterministic
    recovered = FAST.Signature(pure_sig.to_bytes()).recover_public_key_from_msg_hash(digest)
    assert recovered == pure_key.public_key
    assert PURE.Signature(fast_sig.to_bytes()).recover_public_key_from_msg_hash(digest) == (
        fast_key.public_key
    )


def test_an_sdk_l1_action_recovers_to_its_signer() -> None:
    wallet = Account.from_key("0x" + "11" * 32)
    action = {
        "type": "order",
        "orders": [{"a": 0, "b": True, "p": "100000", "s": "0.001", "r": False,
                    "t": {"limit": {"tif": "Ioc"}}, "c": "0x" + "ab" * 16}],
        "grouping": "na",
    }  # fmt: skip
    signature = sign_l1_action(wallet, action, None, 1_700_000_000_000, None, False)
    signer = recover_agent_or_user_from_l1_action(
        action, signature, None, 1_700_000_000_000, None, False
    )
    assert signer.lower() == wallet.address.lower()
