"""The venue account against the books: each coin's size, Σ trader equity + unallocated =
account equity, and the traders' allocations still backed; plus what moves the account
without a trader (foreign orders, deposits, withdrawals and transfers). A difference seen
on consecutive passes pauses the traders concerned and raises an alert."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal

from application.ports import Alerts, Exchange, ExchangeError, VenueAccountState
from application.trading import TradingApp
from application.venue_state import (
    SyncPolicy,
    SyncReport,
    VenueRead,
    allocated,
    holders,
    trader_equity,
)
from domain.trader import Trader
from domain.values import ZERO
from domain.venue_account import VenueAccount

log = logging.getLogger("nof0.engine")


class AccountChecks:
    def __init__(
        self,
        app: TradingApp,
        exchange: Exchange,
        alerts: Alerts,
        policy: SyncPolicy,
        config_ids: Collection[str],
    ) -> None:
        self.app = app
        self.exchange = exchange
        self.alerts = alerts
        self.policy = policy
        # The pass's own collection (it may grow): never a callback into the pass, whose
        # cycle would keep the store's connections open until the garbage collector runs.
        self.config_ids = config_ids
        self._drift_seen: dict[str, tuple[str, int]] = {}  # key → (finding, passes seen)
        self._transfer_cursor: datetime | None = None

    @property
    def drifting(self) -> int:
        """Findings seen but not yet confirmed (counted per pass)."""
        return len(self._drift_seen)

    def traders(self) -> list[Trader]:
        """Every trader on the account, read afresh."""
        return self.app.find_traders(c for c in self.config_ids)

    def unallocated(self, account: VenueAccount) -> Decimal:
        return account.baseline_equity - allocated(self.traders())

    def _invariant(
        self, state: VenueAccountState, account: VenueAccount
    ) -> tuple[Decimal, Decimal, Decimal]:
        traders = self.traders()
        return (
            state.equity,
            trader_equity(traders, state),
            account.baseline_equity - allocated(traders),
        )

    def observe_foreign_orders(
        self,
        venue: VenueRead,
        everyone: list[Trader],
        account: VenueAccount,
        now: datetime,
        report: SyncReport,
    ) -> None:
        ours = {c for t in everyone for c in (*t.pending, *t.protections)}
        open_oids = set()
        for order in venue.open_orders:
            if order.cloid and order.cloid in ours:
                continue
            open_oids.add(order.oid)
            if account.observe_order(
                oid=order.oid,
                cloid=order.cloid,
                coin=order.coin,
                side=order.side.value,
                size=order.size,
                price=order.limit_price,
                trigger_price=order.trigger.price if order.trigger else None,
                reduce_only=order.reduce_only,
                at=now,
            ):
                report.foreign += 1
                self.alerts.alert(
                    "venue",
                    "foreign_order",
                    f"open order {order.oid} ({order.side.value} {order.size} {order.coin}) "
                    "was not placed by any trader",
                )
        for oid in list(account.foreign_orders):
            if oid not in open_oids:
                account.order_gone(oid, now)

    def _confirmed(self, key: str, detail: str, startup: bool) -> bool:
        seen_detail, count = self._drift_seen.get(key, ("", 0))
        count = count + 1 if seen_detail == detail else 1
        self._drift_seen[key] = (detail, count)
        return startup or count >= self.policy.drift_confirmations

    def check_positions(
        self,
        venue: VenueRead,
        everyone: list[Trader],
        mine: dict[str, Trader],
        account: VenueAccount,
        now: datetime,
        report: SyncReport,
        *,
        startup: bool,
    ) -> None:
        coins = set(venue.state.positions)
        for trader in everyone:
            coins |= set(trader.positions)
        # A trader left out of this pass (its cycle holds its lock) has fills not yet
        # booked: its coins are compared on a later pass.
        busy = {c for t in everyone if t.config_id in report.skipped for c in holders([t])}
        for coin in sorted(coins - busy):
            theirs = venue.state.positions[coin].qty if coin in venue.state.positions else ZERO
            books = {t.config_id: t.positions[coin].qty for t in everyone if coin in t.positions}
            ours = sum(books.values(), start=ZERO)
            key = f"position:{coin}"
            if ours == theirs:
                self._drift_seen.pop(key, None)
                account.clear_drift(key, now)
                continue
            owners = sorted(books) or sorted(h for c, h in holders(everyone).items() if c == coin)
            held = ", ".join(f"{k} {v}" for k, v in books.items()) or "none"
            detail = f"{coin}: books {ours} ({held}), venue {theirs}"
            if not self._confirmed(key, detail, startup):
                continue
            report.drift.append(detail)
            if account.detect_drift(key, detail, owners, now):
                self.alerts.alert(
                    ",".join(owners) or "venue",
                    "drift",
                    f"{detail}; "
                    + ("paused " + ", ".join(owners) if owners else "no trader holds it"),
                )
                log.error("venue %s drift: %s", self.exchange.name, detail)
            # Only traders this pass holds the lock of; the others on a later pass.
            for config_id in owners:
                held_trader = mine.get(config_id)
                if held_trader is not None and not held_trader.paused:
                    held_trader.pause("drift", detail, now)
                    self.app.save_trader(held_trader)

    async def record_transfers(
        self, state: VenueAccountState, account: VenueAccount, now: datetime, report: SyncReport
    ) -> bool:
        """Deposits, withdrawals and transfers the state read reflects, each once; False
        when the venue could not say (the equity is then not judged this pass)."""
        account.track_transfers(state.time, now)  # an account registered before tracking
        after = account.transfers_after or state.time
        since = max(after, self._transfer_cursor or after)
        try:
            transfers = await self.exchange.transfers_since(
                since - timedelta(seconds=self.policy.overlap_s)
            )
        except ExchangeError as exc:
            report.findings.append(f"transfers unavailable: {exc}")
            log.warning("venue %s: transfers unavailable: %s", self.exchange.name, exc)
            return False
        for transfer in transfers:
            if transfer.time > state.time:
                continue  # after the state was read: the next pass, with the state showing it
            if account.observe_transfer(
                transfer_id=transfer.transfer_id,
                kind=transfer.kind,
                amount=transfer.amount,
                venue_time=transfer.time,
                at=now,
            ):
                report.transfers += 1
                log.info(
                    "venue %s: %s of %+.2f USDC: unallocated now %.2f",
                    self.exchange.name,
                    transfer.kind,
                    transfer.amount,
                    self.unallocated(account),
                )
        if self._transfer_cursor is None or state.time > self._transfer_cursor:
            self._transfer_cursor = state.time
        return True

    def check_backing(
        self,
        account: VenueAccount,
        mine: dict[str, Trader],
        now: datetime,
        report: SyncReport,
    ) -> None:
        """The account must hold what the traders were given: after a withdrawal that took
        part of it, their sizing no longer rests on real money (they pause)."""
        unallocated = self.unallocated(account)
        key = "underfunded"
        if unallocated >= -self.policy.equity_tolerance:
            account.clear_drift(key, now)
            return
        detail = (
            f"the account holds {-unallocated:.2f} USDC less than the traders' allocations "
            "(withdrawn or transferred out)"
        )
        report.drift.append(detail)
        names = sorted(mine)
        if not account.detect_drift(key, detail, names, now):
            return  # known (resuming holds while the shortfall stays the same)
        self.alerts.alert("venue", "underfunded", f"{detail}; paused {', '.join(names)}")
        log.error("venue %s: %s", self.exchange.name, detail)
        for trader in mine.values():
            if not trader.paused:
                trader.pause("underfunded", detail, now)
                self.app.save_trader(trader)

    def check_equity(
        self,
        venue: VenueRead,
        account: VenueAccount,
        mine: dict[str, Trader],
        now: datetime,
        report: SyncReport,
        *,
        startup: bool,
    ) -> None:
        if report.skipped or any(t.pending for t in self.traders()):
            return  # an order in flight makes the books and the venue momentarily differ
        equity, traders, unallocated = self._invariant(venue.state, account)
        gap = equity - traders - unallocated
        report.equity_gap = gap
        key = "equity"
        if abs(gap) <= self.policy.equity_tolerance:
            self._drift_seen.pop(key, None)
            account.clear_drift(key, now)
            return
        # The finding is the gap alone (stable while prices move); the amounts go to the log.
        detail = f"the account equity is {gap:+.2f} USDC off Σ trader equity + unallocated"
        if not self._confirmed(key, detail, startup):
            return
        names = sorted(mine)
        if account.detect_drift(key, detail, names, now):
            # The books no longer explain the account: no trader on it opens anything more
            # until someone has looked (resuming holds as long as the gap does not change).
            self.alerts.alert("venue", "equity_drift", f"{detail}; paused {', '.join(names)}")
            log.error(
                "venue %s: %s (account %.2f, traders %.2f, unallocated %.2f)",
                self.exchange.name,
                detail,
                equity,
                traders,
                unallocated,
            )
            for trader in mine.values():
                if not trader.paused:
                    trader.pause("equity_drift", detail, now)
                    self.app.save_trader(trader)
