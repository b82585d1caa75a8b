"""Hyperliquid's API semantics in front of a :class:`SimVenue`, independent of HTTP.

``handle(path, body, client)`` takes the parsed JSON body of ``POST /info`` or
``POST /exchange`` and returns ``(HTTP status, body)``: what the venue would answer, bad
input included (it never raises for a bad request). It does what the venue does before an
action reaches the matching engine:

* **Request weight** per client (the IP address over HTTP) in a sliding minute, Hyperliquid's
  IP budget: past it, HTTP 429 with body ``null``. The in-process engine (client
  ``"in-process"``) is exempt. The extra weight of long answers (per 20 fills, per 60
  candles) is not counted.
* **Signatures**: L1 actions are recovered as the SDK's
  ``recover_agent_or_user_from_l1_action`` recovers them (``l1_signing.recover_l1``: the
  same message, its fixed EIP-712 hashes computed once) over the action exactly as
  received; user-signed actions with ``recover_user_from_user_signed_action`` and the
  SDK's field lists. Both
  testnet-style unless ``is_mainnet`` (the SDK signs testnet-style for every URL but the
  exact mainnet one).
* **Who acts**: the recovered signer must be a funded user or a live agent (mapping to its
  master, or to a vault it leads); otherwise ``User or API Wallet 0x… does not exist.`` with
  the recovered address, so a wrong hash shows a random address exactly as on the venue.
* **Nonces** per signer (the venue's rules), consumed before the action runs, even when the
  action then fails.

Only ``approveAgent`` among the user-signed actions does anything: transfers are disabled
(accounts are funded by configuration) and answer a whole-action error once the signature
and nonce have been checked.

Every venue call happens under one lock, shared with ``advance`` (the price feed thread and
the in-process engine call it): the venue is not thread-safe. Signature recovery, the
expensive part, runs outside it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import numpy as np
from eth_abi.exceptions import EncodingError
from eth_keys.exceptions import BadSignature
from hyperliquid.utils.signing import (
    SEND_ASSET_SIGN_TYPES,
    SPOT_TRANSFER_SIGN_TYPES,
    USD_CLASS_TRANSFER_SIGN_TYPES,
    USD_SEND_SIGN_TYPES,
    WITHDRAW_SIGN_TYPES,
    recover_user_from_user_signed_action,
)

from infrastructure.hyperliquid.l1_signing import recover_l1
from infrastructure.simulator.engine import SimVenue
from infrastructure.simulator.errors import DESERIALIZE, AgentApprovalError, InfoRequestError
from infrastructure.simulator.info import CandleSource
from infrastructure.simulator.rules import DAY_MS

log = logging.getLogger("nof0.sim")

IN_PROCESS = "in-process"
WINDOW_S = 60.0
U64 = 1 << 64

# Hyperliquid's texts (notes §3) ...
UNKNOWN_SIGNER = "User or API Wallet {address} does not exist."
UNRECOVERABLE = "Unable to recover signer."
EXPIRED = "Action already expired"
MUST_DEPOSIT = "Must deposit before performing actions. User: {address}"
# ... and the simulator's own, for cases no capture shows.
TRANSFERS_DISABLED = (
    "Transfers are disabled on the simulator: accounts are funded by configuration "
    "(nof0 sim serve --fund ADDRESS:USDC)."
)
USER_SIGNED_UNSUPPORTED = "Action type is not supported by the simulator: {action}"
NONCE_MISMATCH = "Invalid nonce: the action's nonce {inner} differs from the request's {outer}"
AGENT_VALIDITY = "Agent valid_until must be in the future and at most 180 days ahead."

MAX_AGENT_VALIDITY_MS = 180 * DAY_MS

_LIGHT_INFO = frozenset(
    {
        "l2Book",
        "allMids",
        "clearinghouseState",
        "orderStatus",
        "spotClearinghouseState",
        "exchangeStatus",
    }
)
_BATCH_KEYS = ("orders", "cancels", "modifies")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_WORD = re.compile(r"0x[0-9a-fA-F]{1,64}")
_VALID_UNTIL = re.compile(r"(?:(.*) )?valid_until (\d+)")

APPROVE_AGENT_SIGN_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
APPROVE_BUILDER_FEE_SIGN_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "maxFeeRate", "type": "string"},
    {"name": "builder", "type": "address"},
    {"name": "nonce", "type": "uint64"},
]

#: action type -> (EIP-712 primary type, field list, the action's own nonce field)
USER_SIGNED: dict[str, tuple[str, list[dict[str, str]], str]] = {
    "approveAgent": ("HyperliquidTransaction:ApproveAgent", APPROVE_AGENT_SIGN_TYPES, "nonce"),
    "usdSend": ("HyperliquidTransaction:UsdSend", USD_SEND_SIGN_TYPES, "time"),
    "withdraw3": ("HyperliquidTransaction:Withdraw", WITHDRAW_SIGN_TYPES, "time"),
    "spotSend": ("HyperliquidTransaction:SpotSend", SPOT_TRANSFER_SIGN_TYPES, "time"),
    "usdClassTransfer": (
        "HyperliquidTransaction:UsdClassTransfer",
        USD_CLASS_TRANSFER_SIGN_TYPES,
        "nonce",
    ),
    "sendAsset": ("HyperliquidTransaction:SendAsset", SEND_ASSET_SIGN_TYPES, "nonce"),
    "approveBuilderFee": (
        "HyperliquidTransaction:ApproveBuilderFee",
        APPROVE_BUILDER_FEE_SIGN_TYPES,
        "nonce",
    ),
}
TRANSFERS = frozenset({"usdSend", "withdraw3", "spotSend", "usdClassTransfer", "sendAsset"})

_RECOVERY_ERRORS = (ValueError, TypeError, OverflowError, KeyError, BadSignature, EncodingError)

Answer = tuple[int, Any]


class BadRequest(Exception):
    """The body does not deserialise: HTTP 422 with Hyperliquid's text."""


def request_weight(path: str, body: Any) -> int:
    """Hyperliquid's IP weight of a request (notes §8)."""
    if path == "/exchange":
        action = body.get("action") if isinstance(body, Mapping) else None
        batch = 1
        if isinstance(action, Mapping):
            for key in _BATCH_KEYS:
                items = action.get(key)
                if isinstance(items, list):
                    batch = max(1, len(items))
        return 1 + batch // 40
    kind = body.get("type") if isinstance(body, Mapping) else None
    if kind in _LIGHT_INFO:
        return 2
    return 60 if kind == "userRole" else 20


def _err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _default_ok() -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "default"}}


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < U64:
        raise BadRequest
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise BadRequest
    return value.lower()


def _approval(action: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """(agent, name, valid until) of an ``approveAgent``; the name may end with
    `` valid_until <ms>``."""
    agent = _address(action.get("agentAddress"))
    raw_name = action.get("agentName")
    if not isinstance(raw_name, str):
        raise BadRequest
    matched = _VALID_UNTIL.fullmatch(raw_name)
    if matched is None:
        return agent, raw_name, None
    return agent, matched.group(1) or "", int(matched.group(2))


class _Budget:
    """One client's weight spent in the last minute."""

    __slots__ = ("spent", "total")

    def __init__(self) -> None:
        self.spent: deque[tuple[float, int]] = deque()
        self.total = 0


class SimGateway:
    def __init__(
        self,
        venue: SimVenue,
        *,
        is_mainnet: bool = False,
        weight_per_minute: int | None = 1200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``weight_per_minute``: each client's IP budget (the venue's 1200); None: no limit."""
        self.venue = venue
        self.is_mainnet = is_mainnet
        self.weight_per_minute = weight_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[str, _Budget] = {}
        self._budget_lock = threading.Lock()

    # -- the API ------------------------------------------------------------------------------

    def handle(self, path: str, body: Any, client: str = "local") -> Answer:
        """(HTTP status, JSON body) for one request; a ``str`` body with a 4xx is plain text."""
        try:
            if path not in ("/info", "/exchange"):
                return 404, None
            limited = client != IN_PROCESS and self.weight_per_minute is not None
            if limited and not self._spend(client, request_weight(path, body)):
                return 429, None
            if path == "/info":
                return self._info(body)
            return self._exchange(body)
        except BadRequest:
            return 422, DESERIALIZE
        except Exception:
            log.exception("the simulator failed on %s", path)
            return 500, None

    def retry_after(self, client: str, path: str, body: Any) -> int:
        """Whole seconds until ``client`` may send this request again (for ``Retry-After``)."""
        limit = self.weight_per_minute
        if limit is None:
            return 0
        weight = request_weight(path, body)
        now = self._clock()
        with self._budget_lock:
            budget = self._budgets.get(client)
            if budget is None:
                return 0
            total = budget.total
            for stamp, spent in budget.spent:  # the oldest weight frees first
                if total + weight <= limit:
                    break
                total -= spent
                wait = WINDOW_S - (now - stamp)
            else:
                wait = WINDOW_S
            if budget.total + weight <= limit:
                return 0
        return max(1, math.ceil(wait))

    def _spend(self, client: str, weight: int) -> bool:
        now = self._clock()
        with self._budget_lock:
            budget = self._budgets.get(client)
            if budget is None:
                budget = self._budgets[client] = _Budget()
            spent = budget.spent
            while spent and now - spent[0][0] >= WINDOW_S:
                budget.total -= spent.popleft()[1]
            assert self.weight_per_minute is not None
            if budget.total + weight > self.weight_per_minute:
                return False  # a refused request costs nothing
            spent.append((now, weight))
            budget.total += weight
            if len(self._budgets) > 1024:  # forget clients idle for a minute
                self._budgets = {c: b for c, b in self._budgets.items() if b.spent}
            return True

    def _info(self, body: Any) -> Answer:
        if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
            raise BadRequest
        try:
            with self._lock:
                return 200, self.venue.info(body)
        except InfoRequestError:
            raise BadRequest from None

    def _exchange(self, body: Any) -> Answer:
        if not isinstance(body, Mapping):
            raise BadRequest
        action = body.get("action")
        if not isinstance(action, Mapping) or not isinstance(action.get("type"), str):
            raise BadRequest
        nonce = _integer(body.get("nonce"))
        signature = body.get("signature")
        if not (
            isinstance(signature, Mapping)
            and isinstance(signature.get("r"), str)
            and isinstance(signature.get("s"), str)
            and _HEX_WORD.fullmatch(signature["r"])
            and _HEX_WORD.fullmatch(signature["s"])
        ):
            raise BadRequest
        _integer(signature.get("v"))
        vault = body.get("vaultAddress")
        vault = None if vault is None else _address(vault)
        expires = body.get("expiresAfter")
        expires = None if expires is None else _integer(expires)
        kind = action["type"]
        if kind in USER_SIGNED:
            return 200, self._user_signed(kind, action, signature, nonce)
        return 200, self._l1(action, signature, nonce, vault, expires)

    def _l1(
        self,
        action: Mapping[str, Any],
        signature: Mapping[str, Any],
        nonce: int,
        vault: str | None,
        expires: int | None,
    ) -> dict[str, Any]:
        try:
            signer = recover_l1(action, signature, vault, nonce, expires, self.is_mainnet).lower()
        except _RECOVERY_ERRORS:
            return _err(UNRECOVERABLE)
        with self._lock:
            venue = self.venue
            account = venue.resolve_signer(signer, vault)
            if account is None:
                return _err(UNKNOWN_SIGNER.format(address=signer))
            if expires is not None and expires < venue.now_ms:
                return _err(EXPIRED)
            error = venue.use_nonce(signer, nonce)
            if error is not None:
                return _err(error)
            return venue.exchange(account, action)

    def _user_signed(
        self, kind: str, action: Mapping[str, Any], signature: Mapping[str, Any], nonce: int
    ) -> dict[str, Any]:
        primary, fields, nonce_key = USER_SIGNED[kind]
        message = dict(action)  # the SDK's recovery overwrites hyperliquidChain
        if not isinstance(message.get("signatureChainId"), str):
            raise BadRequest
        inner = _integer(message.get(nonce_key))
        approval: tuple[str, str, int | None] | None = None
        if kind == "approveAgent":
            message.setdefault("agentName", "")  # signed as "" when the name was None
            approval = _approval(message)
        try:
            signer = recover_user_from_user_signed_action(
                message, signature, fields, primary, self.is_mainnet
            ).lower()
        except _RECOVERY_ERRORS:
            return _err(UNRECOVERABLE)
        with self._lock:
            venue = self.venue
            if venue.resolve_signer(signer) != signer:
                # Agents and strangers have no funds of their own (notes §4).
                return _err(MUST_DEPOSIT.format(address=signer))
            if inner != nonce:
                return _err(NONCE_MISMATCH.format(inner=inner, outer=nonce))
            error = venue.use_nonce(signer, nonce)
            if error is not None:
                return _err(error)
            if kind in TRANSFERS:
                return _err(TRANSFERS_DISABLED)
            if approval is None:
                return _err(USER_SIGNED_UNSUPPORTED.format(action=kind))
            agent, name, valid_until = approval
            if valid_until is not None and not (
                venue.now_ms < valid_until <= venue.now_ms + MAX_AGENT_VALIDITY_MS
            ):
                return _err(AGENT_VALIDITY)
            try:
                venue.approve_agent(signer, agent, name or None, valid_until)
            except AgentApprovalError as refused:
                return _err(str(refused))
            return _default_ok()

    # -- configuration and the world moving on (no signature: never reachable over HTTP) ------

    def advance(
        self,
        now_ms: int,
        mids: Mapping[str, Decimal] | None = None,
        *,
        marks: Mapping[str, Decimal] | None = None,
        oracles: Mapping[str, Decimal] | None = None,
        funding_rates: Mapping[str, Decimal] | None = None,
    ) -> None:
        with self._lock:
            self.venue.advance(
                now_ms, mids, marks=marks, oracles=oracles, funding_rates=funding_rates
            )

    def account_revision(self, user: str) -> bytes:
        """A digest of what the venue holds for ``user`` apart from prices: cash,
        positions, leverage, open orders (sizes, trigger states), funding paid, volume,
        a scheduled cancel, and the venue's history sequence (so a record that leaves the
        state as it was, a zero funding payment or a transfer undone, changes it too). Any
        fill, order change, funding payment, transfer or liquidation changes it; a price
        update alone does not."""
        with self._lock:
            return self.venue.account_revision(user)

    def quiet_updates(
        self,
        times_ms: Sequence[int],
        lows: Mapping[str, np.ndarray],
        highs: Mapping[str, np.ndarray],
        funding_rate: Decimal,
    ) -> int:
        with self._lock:
            return self.venue.quiet_updates(times_ms, lows, highs, funding_rate)

    def take_quiet(
        self, updates: Sequence[tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]]
    ) -> None:
        with self._lock:
            self.venue.take_quiet(updates)

    def fund(self, user: str, usdc: Decimal) -> None:
        with self._lock:
            self.venue.fund(user, usdc)

    def approve_agent_trusted(self, user: str, agent: str, name: str | None) -> None:
        """Approve ``agent`` for ``user`` without a signature (configuration only)."""
        with self._lock:
            self.venue.approve_agent(user, agent, name or None, None)

    def set_vault_leader(self, vault: str, leader: str) -> None:
        with self._lock:
            self.venue.set_vault_leader(vault, leader)

    def set_candle_source(self, source: CandleSource | None) -> None:
        with self._lock:
            self.venue.set_candle_source(source)

    def resolve_signer(self, signer: str, vault: str | None = None) -> str | None:
        with self._lock:
            return self.venue.resolve_signer(signer, vault)

    def account_value(self, user: str) -> Decimal:
        with self._lock:
            return self.venue.account_value(user)

    @property
    def now_ms(self) -> int:
        with self._lock:
            return self.venue.now_ms

    @contextmanager
    def locked(self) -> Iterator[SimVenue]:
        """The venue, held exclusively for the ``with`` block (tests, tools)."""
        with self._lock:
            yield self.venue
