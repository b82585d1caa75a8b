"""Reconciliation: the books of every trader on one venue account follow the venue.

Run at start-up, after every order a trader sends, and every ``reconcile_interval`` for the
whole account, a pass:

1. reads the account (positions, equity), its fills and funding payments since the last
   pass, and its open orders;
2. records each fill exactly once (by the venue's trade id) on the trader that caused it:
   by cloid for our orders and protections; a liquidation, or someone else's trade on a
   coin a trader holds, goes to that coin's holder with the reason ``liquidation`` /
   ``external``; anything else is observed on the ``VenueAccount``, never in a book;
3. records funding payments the same way (by the payment's id, on the coin's holder);
4. settles pending orders the venue has finished (IOC remainders, refusals, orders that
   never arrived);
5. keeps every position's stop and target on the venue (``ProtectionKeeper``);
6. records deposits, withdrawals and transfers (they move the unallocated part, never a
   trader's equity);
7. compares each coin's size on the venue with the books: a difference seen on
   consecutive passes pauses the traders concerned and raises an alert; checks that
   Σ trader equity + unallocated = account equity; and that the account still holds the
   traders' allocations (unallocated ≥ 0: a withdrawal may have taken part of them).

Traders whose lock is held (a cycle is running) are left for the next pass.

This module runs the pass; its parts live beside it: ``venue_books`` (2, 3),
``venue_pending`` (4), ``application.protection`` (5), ``venue_checks`` (6, 7) and
``venue_state`` (what they share).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from application.claims import ClaimedCoins
from application.fenced_exchange import acting_for
from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    Exchange,
    ExchangeError,
    OrderReport,
    VenueAccountState,
)
from application.protection import ProtectionKeeper
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from application.venue_books import book_fills, book_funding
from application.venue_checks import AccountChecks
from application.venue_health import real_trader_id
from application.venue_pending import PendingOrders
from application.venue_state import (
    OUTSIDE,
    SyncPolicy,
    SyncReport,
    VenueRead,
    allocated,
    holders,
    trader_equity,
    venue_marks,
)
from domain.trader import Trader
from domain.values import ZERO
from domain.venue_account import VenueAccount

# Re-exported: the engine, the cycle and the tests import them from here.
__all__ = ["OUTSIDE", "SyncPolicy", "SyncReport", "VenueSync", "holders"]

log = logging.getLogger("nof0.engine")


class VenueSync:
    def __init__(
        self,
        *,
        app: TradingApp,
        exchange: Exchange,
        desk: OrderDesk,
        clock: Clock,
        alerts: Alerts,
        traders: Sequence[TraderSettings],
        engine: EngineSettings,
        policy: SyncPolicy | None = None,
        locks: Mapping[str, asyncio.Lock] | None = None,
    ) -> None:
        self.app = app
        self.exchange = exchange
        self.desk = desk
        self.clock = clock
        self.alerts = alerts
        self.settings = {t.config_id: t for t in traders}
        self.engine = engine
        self.policy = policy or SyncPolicy()
        self.locks = dict(locks or {})
        self.keeper = ProtectionKeeper(app, exchange, desk, clock, alerts)
        self.pending_orders = PendingOrders(app, desk, clock, alerts, self.policy.fill_grace_passes)
        self.checks = AccountChecks(app, exchange, alerts, self.policy, self.settings.keys())
        self._pass_lock = asyncio.Lock()
        self._fill_cursor: datetime | None = None
        self._funding_cursor: datetime | None = None
        self._last_state: VenueAccountState | None = None
        self._claims = ClaimedCoins(app, list(self.settings))  # coin → holders, indexed
        #: ``_unchanged`` after the last pass, when it did nothing (else None).
        self._quiet: tuple[object, ...] | None = None
        self.last_run: datetime | None = None

    def at_rest(self) -> bool:
        """Nothing counted across passes is in flight (a fill awaited, a drift seen once),
        so a pass that finds nothing new on the venue changes nothing."""
        return self.pending_orders.waiting == 0 and self.checks.drifting == 0

    # -- the account ------------------------------------------------------------------------

    def venue_account(self) -> VenueAccount | None:
        return self.app.find_venue_account(self.exchange.name, self.exchange.account_id)

    async def register(self, now: datetime) -> VenueAccount:
        """The VenueAccount for this exchange, registered on first use.

        Its baseline is the account equity minus what the traders have already made, so
        that unallocated = baseline − Σ allocations holds from the start."""
        account = self.venue_account()
        if account is not None:
            return account
        state = await self.exchange.account_state()
        made = ZERO
        for trader in self._traders():
            made += trader.account(venue_marks(trader, state)).equity - trader.allocation
        account = VenueAccount.register(
            provider=self.exchange.name,
            address=self.exchange.account_id,
            baseline_equity=state.equity - made,
            at=now,
        )
        account.track_transfers(state.time, now)
        self.app.save_venue_account(account)
        return account

    def claimed_by_others(self, config_id: str, mine: Trader | None = None) -> dict[str, str]:
        """Coins other traders on this account hold (their entries would merge with ours).

        ``mine``: the caller's working copy of the trader (a cycle's, with unsaved events);
        without it the stored one is read, which rebuilds it when a working copy is pending.
        """
        claimed = self._claims.holders(excluding=config_id)
        # A position on the account that no trader holds (someone else's) is no one's to
        # join: an entry would merge into it.
        if mine is None:
            mine = self.app.find_trader(config_id)
        if self._last_state is not None:
            for coin in self._last_state.positions:
                if coin not in claimed and (mine is None or coin not in mine.positions):
                    claimed.setdefault(coin, OUTSIDE)
        return claimed

    def _traders(self, excluding: str | None = None) -> list[Trader]:
        return self.app.find_traders(c for c in self.settings if c != excluding)

    def invariant(
        self, state: VenueAccountState, account: VenueAccount | None = None
    ) -> tuple[Decimal, Decimal, Decimal]:
        """(account equity, Σ trader equity, unallocated) at the venue's marks (``account``:
        the working copy a pass is changing; by default the stored one)."""
        account = account or self.venue_account()
        traders = self._traders()
        total = trader_equity(traders, state)
        if account is None:
            return state.equity, total, state.equity - allocated(traders)
        return state.equity, total, self.unallocated(account, traders)

    def unallocated(
        self, account: VenueAccount, traders: Iterable[Trader] | None = None
    ) -> Decimal:
        """The account's capital no trader was given: baseline − Σ allocations."""
        return account.baseline_equity - allocated(self._traders() if traders is None else traders)

    # -- a pass -----------------------------------------------------------------------------

    async def run(
        self,
        now: datetime,
        *,
        only: str | None = None,
        reports: Mapping[str, OrderReport] | None = None,
        startup: bool = False,
        owned: frozenset[str] | None = None,
        full: bool = True,
    ) -> SyncReport:
        """One reconciliation pass (``only``: one trader whose lock the caller holds).

        With several engines, ``owned`` are the traders this one holds leases for (the
        others' fills and protections are theirs to book), and ``full`` is False unless it
        holds the venue's lease: only that engine writes the venue account."""
        report = SyncReport()
        if only is not None:
            await self._pass(now, [only], report, reports or {}, startup=startup, full=False)
            return report
        async with self._pass_lock:
            acquired: list[asyncio.Lock] = []
            names: list[str] = []
            for config_id in self.settings:
                if owned is not None and config_id not in owned:
                    continue
                lock = self.locks.get(config_id)
                if lock is not None:
                    if lock.locked():
                        report.skipped.append(config_id)
                        continue
                    await lock.acquire()
                    acquired.append(lock)
                names.append(config_id)
            try:
                quiet = None if startup or reports else self._unchanged(names, full)
                if quiet is not None and quiet == self._quiet:
                    report.idle = True
                else:
                    await self._pass(now, names, report, reports or {}, startup=startup, full=full)
                    # The key read before the pass: a change on the venue while it read (a
                    # stop firing between its reads) makes the next key differ.
                    done = report.did_nothing() and self.at_rest()
                    self._quiet = quiet if done else None
            finally:
                for lock in acquired:
                    lock.release()
        self.last_run = now
        return report

    def _unchanged(self, names: list[str], full: bool) -> tuple[object, ...] | None:
        """What a pass over ``names`` reads, but the prices: the venue account's revision
        (a venue that can tell, the in-process simulator: every fill, order change, funding
        payment, transfer or liquidation changes it; a price alone does not), the traders'
        and the venue account's versions. None when the venue cannot tell.

        After a pass that did nothing (``SyncReport.did_nothing``: no fill, funding,
        settlement, protection, exit, transfer, foreign order, drift or finding, and no
        unprotected position checked against the price) and with nothing in flight
        (``at_rest``), a pass over an unchanged key would do nothing again: what it checks
        against prices is the equity invariant, whose two sides move alike with the marks
        when the positions agree. So it is not run (a backtest's ticks ran one per venue
        whether or not anything had happened there)."""
        revision = getattr(self.exchange, "account_revision", None)
        if not callable(revision):
            return None
        traders = self._traders()
        if any(t.pending for t in traders):
            return None  # orders in flight: their outcome may come from a lookup, not a change
        account = self.venue_account()
        versions = tuple((t.config_id, t.version) for t in traders)
        return (revision(), tuple(names), full, versions, account and account.version)

    async def _fetch(self, since_fill: datetime, since_funding: datetime) -> VenueRead:
        # The account and the open orders first, then the fills: every fill the account
        # reflects, and every fill of an order no longer open, is then in the fill list.
        state = await self.exchange.account_state()
        open_orders = await self.exchange.open_orders()
        fills = await self.exchange.fills_since(since_fill)
        funding = await self.exchange.funding_since(since_funding)
        self._last_state = state
        return VenueRead(state, fills, funding, open_orders)

    async def _pass(
        self,
        now: datetime,
        names: list[str],
        report: SyncReport,
        reports: Mapping[str, OrderReport],
        *,
        startup: bool,
        full: bool,
    ) -> None:
        everyone = self._traders()
        mine = {t.config_id: t for t in everyone if t.config_id in names}
        if not mine:
            return
        overlap = timedelta(seconds=self.policy.overlap_s)
        since_fill = self._cursor(self._fill_cursor, mine.values(), "fill") - overlap
        since_funding = self._cursor(self._funding_cursor, mine.values(), "funding") - overlap
        try:
            venue = await self._fetch(since_fill, since_funding)
        except ExchangeError as exc:
            report.findings.append(f"venue unavailable: {exc}")
            log.warning("venue %s unavailable for reconciliation: %s", self.exchange.name, exc)
            return
        account = await self.register(now) if full else None
        seen = account or self.venue_account()
        foreign = set(seen.seen_ids) if seen is not None else set()
        book_fills(self.app, self.alerts, venue, everyone, mine, account, report, foreign)
        book_funding(self.app, venue, everyone, mine, account, report, foreign)
        open_cloids = {o.cloid for o in venue.open_orders if o.cloid}
        for trader in mine.values():
            await self.pending_orders.settle(trader, open_cloids, reports, report)
        try:
            assets = {c: a.sz_decimals for c, a in (await self.exchange.assets()).items()}
        except ExchangeError as exc:
            report.findings.append(f"assets unavailable: {exc}")
            assets = {}
        for trader in mine.values():
            # Paused traders too: pausing stops new decisions, never the protection of
            # positions already open.
            settings = self.settings[trader.config_id]
            with acting_for(real_trader_id(trader.config_id)):
                kept = await self.keeper.keep(
                    trader,
                    settings,
                    open_orders={o.cloid: o.oid for o in venue.open_orders if o.cloid},
                    sz_decimals=assets,
                    marks=venue_marks(trader, venue.state),
                    venue_qty={c: p.qty for c, p in venue.state.positions.items()},
                    filled_cloids={f.cloid for f in venue.fills if f.cloid},
                )
            report.protections += kept.placed + kept.resized + kept.canceled
            report.exits += len(kept.exits)
            report.watched += kept.watched
        if report.exits:
            # Emergency closes went out: book their fills now, not a pass later.
            try:
                venue = await self._fetch(since_fill, since_funding)
            except ExchangeError as exc:
                report.findings.append(f"venue unavailable after closing: {exc}")
                return
            everyone = self._traders()
            mine = {t.config_id: t for t in everyone if t.config_id in names}
            book_fills(self.app, self.alerts, venue, everyone, mine, account, report, foreign)
            open_cloids = {o.cloid for o in venue.open_orders if o.cloid}
            for trader in mine.values():
                await self.pending_orders.settle(trader, open_cloids, {}, report)
        if full and account is not None:
            self.checks.observe_foreign_orders(venue, everyone, account, now, report)
            self.checks.check_positions(
                venue, everyone, mine, account, now, report, startup=startup
            )
            if await self.checks.record_transfers(venue.state, account, now, report):
                self.checks.check_equity(venue, account, mine, now, report, startup=startup)
                self.checks.check_backing(account, mine, now, report)
            self.app.save_venue_account(account)
            if not report.skipped:
                self._advance_cursors(venue)

    def rewind_cursors(self) -> None:
        """Read fills and funding from each trader's own last booking again (a trader taken
        over from another engine: its fills since then were that engine's to book)."""
        self._fill_cursor = None
        self._funding_cursor = None

    def _cursor(self, kept: datetime | None, traders: Iterable[Trader], what: str) -> datetime:
        if kept is not None:
            return kept
        stamps = []
        for trader in traders:
            last = trader.last_fill_at if what == "fill" else trader.last_funding_at
            stamps.append(last or trader.created_on)
        return min(stamps)

    def _advance_cursors(self, venue: VenueRead) -> None:
        if venue.fills:
            newest = max(f.time for f in venue.fills)
            if self._fill_cursor is None or newest > self._fill_cursor:
                self._fill_cursor = newest
        if venue.funding:
            newest = max(f.time for f in venue.funding)
            if self._funding_cursor is None or newest > self._funding_cursor:
                self._funding_cursor = newest
