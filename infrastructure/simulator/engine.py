"""SimVenue: a simulated Hyperliquid perpetuals venue that speaks Hyperliquid's wire format.

``info`` and ``exchange`` take and return exactly what ``/info`` and ``/exchange`` carry
(JSON-native dicts and lists, numbers as decimal strings), so an HTTP front end only has to
verify signatures and nonces (``resolve_signer``, ``use_nonce``) and pass bodies through.

The venue reads no clock and no global randomness: time is the ``now_ms`` given to
``advance`` and the synthetic book is seeded from the config, so the same inputs and seed give
the same outputs, bit for bit. With a ``state_dir`` every mutation is on disk before the call
returns (see ``store``). The rules and the simulator's own choices are documented in the
modules that implement them: ``trading`` (matching, orders, triggers), ``sweep`` (funding,
liquidation), ``account_actions`` (leverage, isolated margin, scheduled cancel), ``auth``
(nonces, agents), ``margin`` (account maths), ``book`` (synthetic depth), ``candles``,
``info_*`` (the /info answers) and ``store`` (files).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from infrastructure.simulator import account_actions, auth, errors, horizon, info, sweep
from infrastructure.simulator.actions import (
    boolean,
    cloid,
    field,
    grouping,
    integer,
    mapping,
    oid_or_cloid,
    order_wire,
    sequence,
)
from infrastructure.simulator.config import (
    DEFAULT_UNIVERSE,
    BookModel,
    SimAsset,
    SimConfig,
)
from infrastructure.simulator.errors import AgentApprovalError, InfoRequestError, ShapeError
from infrastructure.simulator.info import CandleSource
from infrastructure.simulator.margin import summarize
from infrastructure.simulator.rules import ZERO
from infrastructure.simulator.state import LedgerUpdate
from infrastructure.simulator.store import Store
from infrastructure.simulator.trading import Venue

__all__ = [
    "DEFAULT_UNIVERSE",
    "AgentApprovalError",
    "BookModel",
    "CandleSource",
    "InfoRequestError",
    "SimAsset",
    "SimConfig",
    "SimVenue",
]

COMPACT_SLACK = 10_000  # history lines beyond twice what memory keeps before a rewrite

Response = dict[str, Any]


def _ok(kind: str, data: Any = None) -> Response:
    body: dict[str, Any] = {"type": kind}
    if data is not None:
        body["data"] = data
    return {"status": "ok", "response": body}


def _err(text: str) -> Response:
    return {"status": "err", "response": text}


def _result(error: str | None) -> Response:
    return _ok("default") if error is None else _err(error)


class SimVenue:
    def __init__(self, venue: Venue, store: Store | None, history_lines: int = 0) -> None:
        self._venue = venue
        self._store = store
        self._history_lines = history_lines
        self._candle_source: CandleSource | None = None

    @classmethod
    def open(cls, config: SimConfig, state_dir: Path | None) -> SimVenue:
        """The venue saved in ``state_dir`` (a new one if none); ``None`` = in memory only."""
        venue = Venue(config)
        if state_dir is None:
            return cls(venue, None)
        store = Store(state_dir)
        loaded = store.load()
        if loaded is None:
            return cls(venue, store)
        core, records = loaded
        venue.restore(core, records)
        opened = cls(venue, store, len(records))
        opened._compact_if_large()
        return opened

    @property
    def now_ms(self) -> int:
        return self._venue.now

    @property
    def config(self) -> SimConfig:
        return self._venue.config

    # -- durability ----------------------------------------------------------------------------

    def _commit(self) -> None:
        journal = self._venue.journal
        if self._store is not None:
            self._store.commit(self._venue.core, journal.pending)
            self._history_lines += len(journal.pending)
        journal.pending.clear()
        self._venue.changed = False
        self._compact_if_large()

    def _compact_if_large(self) -> None:
        kept = self._venue.journal.size()
        if self._store is not None and self._history_lines > 2 * kept + COMPACT_SLACK:
            self._store.rewrite_history(self._venue.journal.retained())
            self._history_lines = kept

    # -- the world moving on -------------------------------------------------------------------

    def advance(
        self,
        now_ms: int,
        mids: Mapping[str, Decimal] | None = None,
        *,
        marks: Mapping[str, Decimal] | None = None,
        oracles: Mapping[str, Decimal] | None = None,
        funding_rates: Mapping[str, Decimal] | None = None,
    ) -> None:
        """New prices at ``now_ms`` (mark and oracle default to the mid), then funding,
        resting fills, triggers, scheduled cancels and liquidations, in that order."""
        sweep.advance(
            self._venue, now_ms, mids or {}, marks or {}, oracles or {}, funding_rates or {}
        )
        if self._venue.changed:
            self._commit()

    def account_revision(self, user: str) -> bytes:
        """A digest of the user's account apart from prices (see the gateway's)."""
        core = self._venue.core
        user = user.lower()
        acct = core.accounts.get(user)
        if acct is None:
            return b""
        held = (
            # Every record of the user's history (a zero funding payment, a transfer undone),
            # not the market's (a coin's hourly funding rate: no read of the account shows it).
            self._venue.journal.user_seq.get(user, 0),
            acct.cash,
            acct.funded,
            acct.positions,
            acct.leverage,
            acct.open_orders,
            acct.funding_all,
            acct.volume,
            acct.cancel_at,
        )
        return hashlib.blake2b(msgspec.msgpack.encode(held), digest_size=16).digest()

    def quiet_updates(
        self,
        times_ms: Sequence[int],
        lows: Mapping[str, np.ndarray],
        highs: Mapping[str, np.ndarray],
        funding_rate: Decimal,
    ) -> int:
        """How many coming price updates are sure to set nothing off (see ``horizon``)."""
        return horizon.quiet_updates(self._venue, times_ms, lows, highs, funding_rate)

    def take_quiet(
        self, updates: Sequence[tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]]
    ) -> None:
        """Price updates ``quiet_updates`` proved quiet, taken in bulk (see ``horizon``)."""
        horizon.take_quiet(self._venue, updates)

    def fund(self, user: str, usdc: Decimal) -> None:
        """Deposit USDC (configuration and CLI only; never an HTTP route).

        The deposit is in the user's ledger (userNonFundingLedgerUpdates), as on the venue."""
        if usdc <= 0:
            raise ValueError(f"a deposit must be positive, not {usdc}")
        user = user.lower()
        acct = self._venue.account(user)
        acct.cash += usdc
        acct.funded = True
        self._ledger(user, "deposit", usdc)
        self._commit()

    def withdraw(self, user: str, usdc: Decimal) -> None:
        """Withdraw USDC (an operator's action, never an HTTP route): at most what the
        account could withdraw on the venue (free margin, see ``margin``)."""
        user = user.lower()
        acct = self._venue.core.accounts.get(user)
        if usdc <= 0:
            raise ValueError(f"a withdrawal must be positive, not {usdc}")
        free = (
            ZERO
            if acct is None
            else summarize(acct, self._venue.marks(), self._venue.by_coin).withdrawable
        )
        if acct is None or usdc > free:
            raise ValueError(f"{user} can withdraw at most {free} USDC, not {usdc}")
        acct.cash -= usdc
        self._ledger(user, "withdraw", usdc)
        self._commit()

    def _ledger(self, user: str, kind: str, usdc: Decimal) -> None:
        venue = self._venue
        seq = venue.next_seq()
        digest = hashlib.sha256(f"ledger:{venue.config.seed}:{user}:{seq}".encode()).hexdigest()
        venue.record(LedgerUpdate(seq, user, venue.now, kind, usdc, "0x" + digest, nonce=seq))

    def set_candle_source(self, source: CandleSource | None) -> None:
        self._candle_source = source

    # -- who acts for whom -----------------------------------------------------------------------

    def approve_agent(
        self, user: str, agent: str, name: str | None, valid_until_ms: int | None
    ) -> None:
        """Raises ``AgentApprovalError`` when a fourth named agent is asked for."""
        auth.approve_agent(self._venue.core, user, agent, name, valid_until_ms)
        self._commit()

    def set_vault_leader(self, vault: str, leader: str) -> None:
        self._venue.core.vaults[vault.lower()] = leader.lower()
        self._commit()

    def resolve_signer(self, signer: str, vault: str | None = None) -> str | None:
        return auth.resolve_signer(self._venue.core, signer, vault)

    def use_nonce(self, signer: str, nonce: int) -> str | None:
        error = auth.use_nonce(self._venue.core, signer, nonce)
        if error is None:
            self._commit()
        return error

    # -- the two endpoints ---------------------------------------------------------------------

    def info(self, request: Mapping[str, Any]) -> Any:
        return info.answer(self._venue, request, self._candle_source)

    def exchange(self, account: str, action: Mapping[str, Any]) -> Response:
        """An authenticated L1 action for ``account``; Hyperliquid's envelope, never raises for
        bad input (a malformed action gets the deserialisation text as a whole-action error)."""
        user = account.lower()
        self._venue.account(user).requests += 1
        try:
            response = self._dispatch(user, action)
        except ShapeError:
            response = _err(errors.DESERIALIZE)
        self._commit()
        return response

    def _dispatch(self, user: str, action: object) -> Response:
        body = mapping(action)
        kind = body.get("type")
        if not isinstance(kind, str):
            raise ShapeError("no action type")
        venue = self._venue
        if kind == "order":
            wires = [order_wire(one) for one in sequence(field(body, "orders"))]
            group = grouping(body.get("grouping", "na"))
            if body.get("builder") is not None:
                return _err(errors.BUILDER)
            return _ok("order", {"statuses": venue.submit(user, wires, group)})
        if kind in ("cancel", "cancelByCloid"):
            by_cloid = kind == "cancelByCloid"
            refs: list[tuple[int, int | str]] = [
                (integer(field(e, "asset")), cloid(field(e, "cloid")))
                if by_cloid
                else (integer(field(e, "a")), integer(field(e, "o")))
                for e in map(mapping, sequence(field(body, "cancels")))
            ]
            acct = venue.account(user)
            return _ok("cancel", {"statuses": [venue.cancel(acct, a, ref) for a, ref in refs]})
        if kind in ("modify", "batchModify"):
            return self._modify(user, body, single=kind == "modify")
        if kind == "updateLeverage":
            return _result(
                account_actions.update_leverage(
                    venue,
                    user,
                    integer(field(body, "asset")),
                    boolean(field(body, "isCross")),
                    integer(field(body, "leverage")),
                )
            )
        if kind == "updateIsolatedMargin":
            boolean(field(body, "isBuy"))
            return _result(
                account_actions.update_isolated_margin(
                    venue, user, integer(field(body, "asset")), integer(field(body, "ntli"))
                )
            )
        if kind == "scheduleCancel":
            when = body.get("time")
            return _result(
                account_actions.schedule_cancel(
                    venue, user, None if when is None else integer(when)
                )
            )
        if kind == "noop":
            return _ok("default")
        return _err(errors.UNSUPPORTED_ACTION.format(action=kind))

    def _modify(self, user: str, body: Mapping[str, Any], *, single: bool) -> Response:
        if single:
            mods = [(oid_or_cloid(field(body, "oid")), order_wire(field(body, "order")))]
        else:
            mods = [
                (oid_or_cloid(field(m, "oid")), order_wire(field(m, "order")))
                for m in map(mapping, sequence(field(body, "modifies")))
            ]
        acct = self._venue.account(user)
        if any(self._venue.find_open(acct, ref) is None for ref, _ in mods):
            return _err(errors.MODIFY_MISSING)
        statuses = [self._venue.modify(user, ref, wire_order) for ref, wire_order in mods]
        if not single:
            return _ok("order", {"statuses": statuses})
        first = statuses[0]
        if isinstance(first, dict) and "error" in first:
            return _err(str(first["error"]))
        return _ok("default")

    # -- for tests and invariants ----------------------------------------------------------------

    def account_value(self, user: str) -> Decimal:
        """Total account value (cross and isolated), exact."""
        acct = self._venue.core.accounts.get(user.lower())
        if acct is None:
            return ZERO
        return summarize(acct, self._venue.marks(), self._venue.by_coin).total_value
