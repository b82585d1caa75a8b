"""The Hyperliquid exchange adapter: the ``Exchange`` port over the official SDK.

Actions are built with the SDK's own helpers (``order_request_to_order_wire``) and signed
as its ``sign_l1_action`` signs them (``l1_signing.sign_l1``: the same message and
signature, the fixed EIP-712 hashes computed once), so the bytes the venue hashes are the
ones the SDK would send, and go
out through a :mod:`transport` (HTTP through the SDK's ``API``, or in-process to the
simulator). No SDK ``Info``/``Exchange`` object is built: those fetch metadata and may
start websockets on construction; metadata is read once at start-up instead.

* The signer is an agent wallet (or the main wallet) trading for ``account_address``;
  with ``vault_address`` the account traded is the vault.
* Nonces come from a :class:`NonceManager` shared by everything signing with the key.
* Every per-order status is read: ``status: ok`` with an error inside is a refusal.
* Read requests are retried with exponential backoff and jitter; order placement is not
  (the order desk looks an order up by cloid before any resubmission).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from hyperliquid.utils.signing import (
    order_request_to_order_wire,
    order_wires_to_order_action,
)
from hyperliquid.utils.types import Cloid

from application.ports import (
    ExchangeError,
    ExchangeSetupError,
    OrderReport,
    OrderState,
    OrderTicket,
    Trigger,
    TriggerKind,
    VenueAccountState,
    VenueFill,
    VenueFunding,
    VenueOrder,
    VenuePosition,
    VenueRefused,
    VenueRejection,
    VenueTransfer,
)
from domain.risk import AssetRules
from domain.values import Liquidity, OrderSide
from infrastructure.hyperliquid.errors import classify, status_reason
from infrastructure.hyperliquid.l1_signing import sign_l1
from infrastructure.hyperliquid.ledger import UnreadableDelta, perp_usdc_change
from infrastructure.hyperliquid.nonces import NonceManager
from infrastructure.hyperliquid.transport import Transport, TransportError

log = logging.getLogger("nof0.hyperliquid")

T = TypeVar("T")

#: After the venue's per-address limit answers, the wait before the next action.
ADDRESS_COOLDOWN_S = 10.0
#: Fills and funding rows per response (the venue's cap) and the most we page through.
PAGE = 2000
MAX_ROWS = 10_000
_OPEN_STATUSES = frozenset({"open", "triggered"})
_WAITING_STATUSES = frozenset({"waitingForTrigger", "waitingForFill"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 2.0


@dataclass(frozen=True)
class _Asset:
    index: int
    rules: AssetRules


class MalformedAnswer(ExchangeError):
    """The venue answered with something we cannot read (the action may have happened)."""


def _dec(value: Any, what: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise MalformedAnswer(f"{what} is not a number: {value!r}") from None
    if not result.is_finite():
        raise MalformedAnswer(f"{what} is not finite: {value!r}")
    return result


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _time(ms: Any) -> datetime:
    if not isinstance(ms, int):
        raise MalformedAnswer(f"a time is not an integer: {ms!r}")
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _wire(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


class HyperliquidExchange:
    supports_triggers = True

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        wallet: LocalAccount,
        account_address: str,
        nonces: NonceManager,
        vault_address: str | None = None,
        is_mainnet: bool = False,
        fee_taker: Decimal = Decimal("0.00045"),
        min_equity: Decimal = Decimal(0),
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.transport = transport
        self.wallet = wallet
        self.vault_address = vault_address.lower() if vault_address else None
        self.account_id = (self.vault_address or account_address).lower()
        self.main_address = account_address.lower()
        self.nonces = nonces
        self.is_mainnet = is_mainnet
        self.fee_taker = fee_taker
        self.min_equity = min_equity
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._assets: dict[str, _Asset] = {}
        self._leverage: dict[str, int] = {}
        self._cooldown_until = 0.0
        # In-process transports answer at once; HTTP ones block and go to a thread.
        self._blocking = getattr(transport, "blocking", True)

    # -- plumbing ---------------------------------------------------------------------------

    async def _post(self, path: str, payload: Mapping[str, Any]) -> Any:
        try:
            if self._blocking:
                return await asyncio.to_thread(self.transport.post, path, payload)
            return self.transport.post(path, payload)
        except TransportError as exc:
            raise ExchangeError(str(exc), ambiguous=exc.ambiguous) from None

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        """Run an idempotent request, retrying transport failures with backoff and jitter."""
        for attempt in range(max(1, self.retry.attempts)):
            if attempt:
                base = min(self.retry.max_backoff_s, self.retry.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(base * self._rng.uniform(0.5, 1.5))
            try:
                return await call()
            except MalformedAnswer:
                raise
            except ExchangeError as exc:
                last = exc
                log.info("%s: attempt %d failed: %s", self.name, attempt + 1, exc)
        raise last

    async def _info(self, payload: Mapping[str, Any]) -> Any:
        return await self._retrying(lambda: self._post("/info", payload))

    async def _action(self, action: dict[str, Any]) -> Any:
        """Sign and send an L1 action; the parsed answer (``status`` checked by callers)."""
        wait = self._cooldown_until - time.monotonic()
        if wait > 0:
            # The venue's per-address limit allows one action per 10 s once exhausted:
            # sending more only burns them.
            raise ExchangeError(
                f"{self.name}: address rate limit, next action in {wait:.0f}s", ambiguous=False
            )
        nonce = self.nonces.next()
        signature = sign_l1(self.wallet, action, self.vault_address, nonce, None, self.is_mainnet)
        body = {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": self.vault_address,
            "expiresAfter": None,
        }
        answer = await self._post("/exchange", body)
        if not isinstance(answer, dict) or answer.get("status") not in ("ok", "err"):
            raise MalformedAnswer(f"{self.name}: unreadable /exchange answer: {str(answer)[:200]}")
        if answer["status"] == "err" and classify(str(answer.get("response"))) is (
            VenueRejection.RATE_LIMITED
        ):
            self._cooldown_until = time.monotonic() + ADDRESS_COOLDOWN_S
        return answer

    def _asset(self, coin: str) -> _Asset:
        asset = self._assets.get(coin)
        if asset is None:
            raise ExchangeError(f"{self.name}: {coin} is not listed on the venue", ambiguous=False)
        return asset

    # -- start-up ---------------------------------------------------------------------------

    async def _load_meta(self) -> None:
        meta = await self._info({"type": "meta", "dex": ""})
        universe = meta.get("universe") if isinstance(meta, dict) else None
        if not isinstance(universe, list):
            raise MalformedAnswer(f"{self.name}: the venue's meta has no universe")
        assets = {}
        for index, entry in enumerate(universe):
            if not isinstance(entry, dict) or entry.get("isDelisted"):
                continue  # delisted assets keep their index but are not traded
            coin = str(entry["name"])
            assets[coin] = _Asset(
                index,
                AssetRules(
                    coin=coin,
                    sz_decimals=int(entry["szDecimals"]),
                    max_leverage=int(entry["maxLeverage"]),
                ),
            )
        self._assets = assets

    async def start(self) -> list[str]:
        """Pre-flight: the asset list, the signer's right to trade the account, the funds."""
        where = getattr(self.transport, "base_url", "")
        try:
            await self._load_meta()
        except (ExchangeError, KeyError, TypeError, ValueError) as exc:
            raise ExchangeSetupError(
                f"exchange {self.name}: cannot read the asset list from {where} ({exc}); "
                "check the provider's api_url and that the venue is reachable"
            ) from None
        signer = self.wallet.address.lower()
        notes = [f"{len(self._assets)} assets listed at {where}"]
        if signer != self.main_address:
            role = await self._role(signer)
            master = str((role.get("data") or {}).get("user", "")).lower()
            if role.get("role") != "agent" or master != self.main_address:
                raise ExchangeSetupError(
                    f"exchange {self.name}: the signing key ({signer}) may not trade for "
                    f"{self.main_address} (userRole says {role.get('role')!r}"
                    f"{f' of {master}' if master else ''}). Approve it as an API wallet "
                    "(agent) from the main wallet, or set private_key to the main "
                    "wallet's key and main_address to its address"
                )
            notes.append(f"signer {signer} is an approved agent of {self.main_address}")
        else:
            notes.append(f"signing with the main wallet {signer}")
        if self.vault_address is not None:
            role = await self._role(self.vault_address)
            if role.get("role") not in ("vault", "subAccount"):
                raise ExchangeSetupError(
                    f"exchange {self.name}: vault_address {self.vault_address} is not a vault "
                    f"or sub-account (userRole says {role.get('role')!r})"
                )
        try:
            state = await self.account_state()
        except ExchangeError as exc:
            raise ExchangeSetupError(
                f"exchange {self.name}: cannot read account {self.account_id}: {exc}"
            ) from None
        if state.equity <= 0:
            raise ExchangeSetupError(
                f"exchange {self.name}: account {self.account_id} holds no funds on the "
                "venue; deposit USDC (the simulator: fund it with --fund or in exchange.yaml)"
            )
        if state.equity < self.min_equity:
            raise ExchangeSetupError(
                f"exchange {self.name}: account value {state.equity:.2f} USDC is below the "
                f"capital allocated to its traders ({self.min_equity:.2f}); deposit more or "
                "lower total_equity_usd / allocation_pct in manager.yaml"
            )
        notes.append(f"account {self.account_id} value {state.equity:.2f} USDC")
        await self._signed_probe()
        notes.append("a signed no-op was accepted (the key signs for this network)")
        notes.append("no builder fee is attached to orders")
        return notes

    async def _signed_probe(self) -> None:
        """Send a signed no-op: a key that signs for the other network (mainnet/testnet),
        a revoked or expired agent, or a broken clock shows here, not at the first order."""
        try:
            answer = await self._action({"type": "noop"})
        except ExchangeError as exc:
            raise ExchangeSetupError(
                f"exchange {self.name}: the signed check action could not be sent: {exc}"
            ) from None
        if answer["status"] != "ok":
            message = str(answer.get("response"))
            raise ExchangeSetupError(
                f"exchange {self.name}: the venue refused a signed no-op: {message}. An "
                "unknown wallet usually means the key is not (or no longer) approved, or "
                "that it signs for the other network: check testnet / api_url"
            )

    async def _role(self, address: str) -> dict[str, Any]:
        try:
            role = await self._info({"type": "userRole", "user": address})
        except ExchangeError as exc:
            raise ExchangeSetupError(
                f"exchange {self.name}: cannot check the role of {address}: {exc}"
            ) from None
        return role if isinstance(role, dict) else {}

    # -- the port ---------------------------------------------------------------------------

    async def assets(self) -> Mapping[str, AssetRules]:
        if not self._assets:
            await self._load_meta()
        return {coin: asset.rules for coin, asset in self._assets.items()}

    async def set_leverage(self, coin: str, leverage: int) -> None:
        if self._leverage.get(coin) == leverage:
            return
        asset = self._asset(coin)
        action = {
            "type": "updateLeverage",
            "asset": asset.index,
            "isCross": True,
            "leverage": leverage,
        }

        async def send() -> Any:
            return await self._action(action)

        answer = await self._retrying(send)
        if answer["status"] != "ok":
            message = str(answer.get("response"))
            raise VenueRefused(classify(message).value, message)
        self._leverage[coin] = leverage

    def _order_wire(self, ticket: OrderTicket) -> dict[str, Any]:
        asset = self._asset(ticket.coin)
        order_type: dict[str, Any]
        if ticket.trigger is None:
            order_type = {"limit": {"tif": ticket.tif.value}}
        else:
            order_type = {
                "trigger": {
                    "triggerPx": float(ticket.trigger.price),
                    "isMarket": ticket.trigger.market,
                    "tpsl": ticket.trigger.kind.value,
                }
            }
        wire: dict[str, Any] = order_request_to_order_wire(
            {
                "coin": ticket.coin,
                "is_buy": ticket.side is OrderSide.BUY,
                "sz": float(ticket.size),
                "limit_px": float(ticket.limit_price),
                "order_type": order_type,
                "reduce_only": ticket.reduce_only,
                "cloid": Cloid.from_str(ticket.cloid),
            },
            asset.index,
        )
        # The SDK goes through float: make sure nothing moved on the way.
        if wire["p"] != _wire(ticket.limit_price) or wire["s"] != _wire(ticket.size):
            raise ExchangeError(
                f"{ticket.coin} order {ticket.cloid}: price/size {ticket.limit_price}/"
                f"{ticket.size} do not survive the wire format ({wire['p']}/{wire['s']})",
                ambiguous=False,
            )
        return wire

    async def place(self, ticket: OrderTicket) -> OrderReport:
        try:
            wire = self._order_wire(ticket)
        except (ValueError, ExchangeError) as exc:
            return OrderReport(
                ticket.cloid,
                OrderState.REJECTED,
                reason=VenueRejection.INVALID_PRICE.value,
                detail=f"not sent: {exc}",
            )
        answer = await self._action(order_wires_to_order_action([wire], None, "na"))
        return await self._order_answer(ticket.cloid, answer)

    async def modify(self, cloid: str, ticket: OrderTicket) -> OrderReport:
        wire = self._order_wire(ticket)
        action = {"type": "batchModify", "modifies": [{"oid": cloid, "order": wire}]}
        answer = await self._action(action)
        return await self._order_answer(ticket.cloid, answer)

    async def _order_answer(self, cloid: str, answer: dict[str, Any]) -> OrderReport:
        if answer["status"] == "err":
            message = str(answer.get("response"))
            return OrderReport(
                cloid, OrderState.REJECTED, reason=classify(message).value, detail=message
            )
        try:
            status = answer["response"]["data"]["statuses"][0]
        except (KeyError, IndexError, TypeError):
            raise MalformedAnswer(f"{self.name}: order answer without statuses: {answer}") from None
        if isinstance(status, str) and status in _WAITING_STATUSES:
            # Trigger orders are acknowledged without an oid: read it back.
            known = await self.order_status(cloid)
            if known.state is OrderState.UNKNOWN:
                return OrderReport(cloid, OrderState.WAITING, reason=status)
            return known
        if not isinstance(status, dict):
            raise MalformedAnswer(f"{self.name}: unreadable order status {status!r}")
        if "error" in status:
            message = str(status["error"])
            return OrderReport(
                cloid, OrderState.REJECTED, reason=classify(message).value, detail=message
            )
        try:
            if "resting" in status:
                return OrderReport(cloid, OrderState.OPEN, oid=int(status["resting"]["oid"]))
            if "filled" in status:
                filled = status["filled"]
                return OrderReport(
                    cloid,
                    OrderState.FILLED,
                    oid=int(filled["oid"]),
                    filled_size=_dec(filled["totalSz"], "totalSz"),
                    avg_price=_dec(filled["avgPx"], "avgPx"),
                )
        except (KeyError, TypeError, ValueError):
            pass  # an answer we cannot read: the order may exist, so it is ambiguous
        raise MalformedAnswer(f"{self.name}: unreadable order status {status!r}")

    async def cancel(self, coin: str, cloid: str) -> bool:
        asset = self._asset(coin)
        action = {"type": "cancelByCloid", "cancels": [{"asset": asset.index, "cloid": cloid}]}

        async def send() -> Any:
            return await self._action(action)

        answer = await self._retrying(send)
        if answer["status"] != "ok":
            raise ExchangeError(
                f"cancel {cloid} refused: {answer.get('response')}", ambiguous=False
            )
        try:
            status = answer["response"]["data"]["statuses"][0]
        except (KeyError, IndexError, TypeError):
            raise MalformedAnswer(f"{self.name}: cancel answer without statuses") from None
        return bool(status == "success")

    async def order_status(self, cloid: str) -> OrderReport:
        answer = await self._info({"type": "orderStatus", "user": self.account_id, "oid": cloid})
        if not isinstance(answer, dict):
            raise MalformedAnswer(f"{self.name}: unreadable orderStatus answer")
        if answer.get("status") == "unknownOid":
            return OrderReport(cloid, OrderState.UNKNOWN)
        if answer.get("status") != "order":
            # Only "unknownOid" says the venue has no such order; anything else is not an
            # answer (and "unknown" would allow sending the order again).
            raise MalformedAnswer(f"{self.name}: unreadable orderStatus answer: {answer}")
        try:
            wrapper = answer["order"]
            order = wrapper["order"]
            status = str(wrapper["status"])
            orig = _dec(order["origSz"], "origSz")
            left = _dec(order["sz"], "sz")
            oid = int(order["oid"])
        except (KeyError, TypeError, ValueError):
            raise MalformedAnswer(f"{self.name}: unreadable orderStatus {answer}") from None
        filled = orig - left
        if status in _OPEN_STATUSES:
            waiting = bool(order.get("isTrigger")) and status == "open"
            state = OrderState.WAITING if waiting else OrderState.OPEN
            return OrderReport(cloid, state, oid=oid, filled_size=filled)
        if status == "filled":
            return OrderReport(cloid, OrderState.FILLED, oid=oid, filled_size=filled)
        if status == "rejected" or status.endswith("Rejected"):
            return OrderReport(
                cloid, OrderState.REJECTED, oid=oid, reason=status_reason(status), detail=status
            )
        return OrderReport(
            cloid,
            OrderState.CANCELED,
            oid=oid,
            filled_size=filled,
            reason=status_reason(status),
            detail=f"venue status {status}",
        )

    async def open_orders(self) -> list[VenueOrder]:
        rows = await self._info({"type": "frontendOpenOrders", "user": self.account_id, "dex": ""})
        if not isinstance(rows, list):
            raise MalformedAnswer(f"{self.name}: unreadable frontendOpenOrders answer")
        result = []
        for row in rows:
            try:
                trigger = None
                if row.get("isTrigger"):
                    kind = (
                        TriggerKind.TARGET
                        if "Take Profit" in str(row.get("orderType"))
                        else TriggerKind.STOP
                    )
                    trigger = Trigger(
                        kind=kind,
                        price=_dec(row["triggerPx"], "triggerPx"),
                        market="Market" in str(row.get("orderType")),
                    )
                result.append(
                    VenueOrder(
                        oid=int(row["oid"]),
                        cloid=row.get("cloid") or None,
                        coin=str(row["coin"]),
                        side=OrderSide.BUY if row["side"] == "B" else OrderSide.SELL,
                        size=_dec(row["sz"], "sz"),
                        limit_price=_dec(row["limitPx"], "limitPx"),
                        reduce_only=bool(row.get("reduceOnly")),
                        trigger=trigger,
                        placed_at=_time(row["timestamp"]),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                raise MalformedAnswer(f"{self.name}: unreadable open order {row!r}") from None
        return result

    async def _paged(self, request: Callable[[int], dict[str, Any]], start: int) -> list[Any]:
        """Rows from ``start`` on, oldest first, following the venue's page size."""
        rows: list[Any] = []
        while True:
            page = await self._info(request(start))
            if not isinstance(page, list):
                raise MalformedAnswer(f"{self.name}: unreadable {request(start)['type']} answer")
            rows.extend(page)
            if len(page) < PAGE or len(rows) >= MAX_ROWS:
                return rows
            last = page[-1].get("time") if isinstance(page[-1], dict) else None
            if not isinstance(last, int) or last <= start:
                return rows
            start = last  # inclusive: the overlap is removed by the ids

    async def fills_since(self, since: datetime) -> list[VenueFill]:
        rows = await self._paged(
            lambda start: {
                "type": "userFillsByTime",
                "user": self.account_id,
                "startTime": start,
                "endTime": None,
                "aggregateByTime": False,
            },
            _ms(since),
        )
        fills: dict[str, VenueFill] = {}
        for row in rows:
            try:
                fill = VenueFill(
                    fill_id=str(row["tid"]),
                    oid=int(row["oid"]),
                    cloid=row.get("cloid") or None,
                    coin=str(row["coin"]),
                    side=OrderSide.BUY if row["side"] == "B" else OrderSide.SELL,
                    size=_dec(row["sz"], "sz"),
                    price=_dec(row["px"], "px"),
                    fee=_dec(row["fee"], "fee"),
                    liquidity=Liquidity.TAKER if row.get("crossed") else Liquidity.MAKER,
                    time=_time(row["time"]),
                    closed_pnl=_dec(row.get("closedPnl", "0"), "closedPnl"),
                    liquidation=bool(row.get("liquidation")),
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                raise MalformedAnswer(f"{self.name}: unreadable fill {row!r}") from None
            fills[fill.fill_id] = fill
        return sorted(fills.values(), key=lambda f: (f.time, f.fill_id))

    async def funding_since(self, since: datetime) -> list[VenueFunding]:
        rows = await self._paged(
            lambda start: {"type": "userFunding", "user": self.account_id, "startTime": start},
            _ms(since),
        )
        payments: dict[str, VenueFunding] = {}
        for row in rows:
            try:
                delta = row["delta"]
                if delta.get("type") != "funding":
                    continue
                coin = str(delta["coin"])
                key = str(row.get("hash") or "")
                funding_id = f"{key}:{coin}" if key else f"{row['time']}:{coin}"
                payments[funding_id] = VenueFunding(
                    funding_id=funding_id,
                    coin=coin,
                    amount=_dec(delta["usdc"], "usdc"),
                    rate=_dec(delta["fundingRate"], "fundingRate"),
                    size=_dec(delta["szi"], "szi"),
                    time=_time(row["time"]),
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                raise MalformedAnswer(f"{self.name}: unreadable funding row {row!r}") from None
        return sorted(payments.values(), key=lambda f: (f.time, f.funding_id))

    async def transfers_since(self, since: datetime) -> list[VenueTransfer]:
        rows = await self._paged(
            lambda start: {
                "type": "userNonFundingLedgerUpdates",
                "user": self.account_id,
                "startTime": start,
            },
            _ms(since),
        )
        transfers: dict[str, VenueTransfer] = {}
        for row in rows:
            try:
                delta = row["delta"]
                kind = str(delta["type"])
                change = perp_usdc_change(delta, self.account_id)
                at = _time(row["time"])
                transfer_id = f"{row.get('hash') or row['time']}:{kind}"
            except (KeyError, TypeError, AttributeError, UnreadableDelta) as exc:
                raise MalformedAnswer(
                    f"{self.name}: unreadable ledger row {row!r} ({exc})"
                ) from None
            if change is None:
                log.warning(
                    "%s: ledger update of an unknown kind %r left out (if it moved money, "
                    "the equity check will say so)",
                    self.name,
                    kind,
                )
                continue
            if change != 0:
                transfers[transfer_id] = VenueTransfer(transfer_id, kind, change, at)
        return sorted(transfers.values(), key=lambda t: (t.time, t.transfer_id))

    async def account_state(self) -> VenueAccountState:
        answer = await self._info(
            {"type": "clearinghouseState", "user": self.account_id, "dex": ""}
        )
        try:
            equity = _dec(answer["marginSummary"]["accountValue"], "accountValue")
            positions = {}
            for entry in answer.get("assetPositions", []):
                p = entry["position"]
                qty = _dec(p["szi"], "szi")
                if qty == 0:
                    continue
                value = _dec(p["positionValue"], "positionValue")
                liq = p.get("liquidationPx")
                positions[str(p["coin"])] = VenuePosition(
                    coin=str(p["coin"]),
                    qty=qty,
                    entry_price=_dec(p["entryPx"], "entryPx"),
                    mark_price=value / abs(qty),
                    liquidation_price=_dec(liq, "liquidationPx") if liq is not None else None,
                    margin_used=_dec(p.get("marginUsed", "0"), "marginUsed"),
                )
            stamp = answer.get("time")
        except (KeyError, TypeError, AttributeError):
            raise MalformedAnswer(f"{self.name}: unreadable clearinghouseState") from None
        at = _time(stamp) if isinstance(stamp, int) else datetime.now(UTC)
        return VenueAccountState(equity=equity, positions=positions, time=at)
