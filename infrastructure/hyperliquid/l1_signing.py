"""L1 action signatures (orders, cancels, leverage) without the generic EIP-712 encoder.

The SDK's ``sign_l1_action`` builds the typed-data document of a "phantom agent"
(``Agent(string source, bytes32 connectionId)``, domain ``Exchange``/``1``/chain 1337/zero
contract) and hands it to ``eth_account.messages.encode_typed_data``, which parses the type
strings and walks the document on every call: about four fifths of a signature's time once
the curve runs on libsecp256k1. The document never changes shape, so its domain hash and
type hash are computed once here, and each signature hashes only the action (the SDK's own
``action_hash``: msgpack, nonce, vault, expiry) and the 32-byte struct. The signing and the
recovery are still eth_account's (``sign_message`` / ``recover_message``) over the same
``SignableMessage`` ``encode_typed_data`` returns, so the bytes on the wire, the recovered
signers and the errors on a bad signature are the SDK's (tests compare both ways, and the
recorded signing vectors pass through these functions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage
from eth_account.signers.local import LocalAccount
from eth_utils.conversions import to_hex
from eth_utils.crypto import keccak
from hyperliquid.utils.signing import action_hash


def _domain_separator() -> bytes:
    domain_type = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        domain_type
        + keccak(b"Exchange")
        + keccak(b"1")
        + (1337).to_bytes(32, "big")
        + bytes(32)  # verifyingContract 0x000…0, left-padded to a word
    )


_DOMAIN = _domain_separator()
_AGENT_TYPE = keccak(b"Agent(string source,bytes32 connectionId)")
_SOURCE = {True: keccak(b"a"), False: keccak(b"b")}  # the phantom agent's source per network


def l1_message(
    action: Mapping[str, Any],
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    is_mainnet: bool,
) -> SignableMessage:
    """What ``encode_typed_data`` makes of the SDK's ``l1_payload`` for this action."""
    connection = action_hash(action, vault_address, nonce, expires_after)
    struct = keccak(_AGENT_TYPE + _SOURCE[is_mainnet] + bytes(connection))
    return SignableMessage(version=b"\x01", header=_DOMAIN, body=struct)


def sign_l1(
    wallet: LocalAccount,
    action: Mapping[str, Any],
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    is_mainnet: bool,
) -> dict[str, Any]:
    """The SDK's ``sign_l1_action`` result: ``{"r": hex, "s": hex, "v": 27|28}``."""
    signed = wallet.sign_message(
        l1_message(action, vault_address, nonce, expires_after, is_mainnet)
    )
    return {"r": to_hex(signed.r), "s": to_hex(signed.s), "v": signed.v}


def recover_l1(
    action: Mapping[str, Any],
    signature: Mapping[str, Any],
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    is_mainnet: bool,
) -> str:
    """The SDK's ``recover_agent_or_user_from_l1_action``: the signer's checksum address."""
    message = l1_message(action, vault_address, nonce, expires_after, is_mainnet)
    vrs = (signature["v"], signature["r"], signature["s"])
    address: str = Account.recover_message(message, vrs=vrs)
    return address
