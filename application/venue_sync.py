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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from application.fenced_exchange import acting_for
from application.orders import OrderDesk
from application.ports import (
    Alerts,
    Clock,
    Exchange,
    ExchangeError,
    OrderReport,
    OrderState,
    VenueAccountState,
    VenueFill,
    VenueFunding,
    VenueOrder,
    VenueRejection,
)
from application.protection import ProtectionKeeper
from application.settings import EngineSettings, TraderSettings
from application.trading import TradingApp
from application.venue_health import real_trader_id
from domain.trader import Trader
from domain.values import ZERO, CloseReason
from domain.venue_account import VenueAccount

log = logging.getLogger("nof0.engine")


@dataclass(frozen=True)
class SyncPolicy:
    drift_confirmations: int = 2  # passes in a row a difference must be seen (in-flight fills)
    equity_tolerance: Decimal = Decimal("0.01")
    overlap_s: float = 120.0  # fills are re-read this far back (venue clocks, late fills)
    fill_grace_passes: int = 3  # a filled order may wait this many passes for its fills


@dataclass
class SyncReport:
    fills: int = 0
    funding: int = 0
    settled: int = 0
    protections: int = 0
    exits: int = 0
    foreign: int = 0
    transfers: int = 0
    skipped: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    equity_gap: Decimal | None = None


@dataclass
class _Venue:
    state: VenueAccountState
    fills: list[VenueFill]
    funding: list[VenueFunding]
    open_orders: list[VenueOrder]


#: The holder of a coin that no trader holds but the account does (someone else's trade).
OUTSIDE = "(outside the arena)"


def holders(traders: Iterable[Trader]) -> dict[str, str]:
    """coin → the trader holding it: a position, an order in flight or a protection."""
    result: dict[str, str] = {}
    for trader in traders:
        coins = (
            set(trader.positions)
            | {p.coin for p in trader.pending.values()}
            | {g.coin for g in trader.protections.values()}
        )
        for coin in sorted(coins):
            result.setdefault(coin, trader.config_id)
    return result


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
        self._pass_lock = asyncio.Lock()
        self._fill_cursor: datetime | None = None
        self._funding_cursor: datetime | None = None
        self._transfer_cursor: datetime | None = None
        self._drift_seen: dict[str, tuple[str, int]] = {}
        self._waiting_fills: dict[str, int] = {}
        self._last_state: VenueAccountState | None = None
        self.last_run: datetime | None = None

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
            made += trader.account(self._marks(trader, state)).equity - trader.allocation
        account = VenueAccount.register(
            provider=self.exchange.name,
            address=self.exchange.account_id,
            baseline_equity=state.equity - made,
            at=now,
        )
        account.track_transfers(state.time, now)
        self.app.save_venue_account(account)
        return account

    def claimed_by_others(self, config_id: str) -> dict[str, str]:
        """Coins other traders on this account hold (their entries would merge with ours)."""
        others = self._traders(excluding=config_id)
        claimed = {coin: h for coin, h in holders(others).items() if h != config_id}
        # A position on the account that no trader holds (someone else's) is no one's to
        # join: an entry would merge into it.
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
        total = sum((t.account(self._marks(t, state)).equity for t in traders), start=ZERO)
        if account is None:
            return state.equity, total, state.equity - self._allocated(traders)
        return state.equity, total, self.unallocated(account, traders)

    def unallocated(
        self, account: VenueAccount, traders: Iterable[Trader] | None = None
    ) -> Decimal:
        """The account's capital no trader was given: baseline − Σ allocations."""
        return account.baseline_equity - self._allocated(
            self._traders() if traders is None else traders
        )

    @staticmethod
    def _allocated(traders: Iterable[Trader]) -> Decimal:
        return sum((t.allocation for t in traders), start=ZERO)

    @staticmethod
    def _marks(trader: Trader, state: VenueAccountState) -> dict[str, Decimal]:
        marks = dict(trader.marks)
        marks.update({coin: p.mark_price for coin, p in state.positions.items()})
        return marks

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
                await self._pass(now, names, report, reports or {}, startup=startup, full=full)
            finally:
                for lock in acquired:
                    lock.release()
        self.last_run = now
        return report

    async def _fetch(self, since_fill: datetime, since_funding: datetime) -> _Venue:
        # The account and the open orders first, then the fills: every fill the account
        # reflects, and every fill of an order no longer open, is then in the fill list.
        state = await self.exchange.account_state()
        open_orders = await self.exchange.open_orders()
        fills = await self.exchange.fills_since(since_fill)
        funding = await self.exchange.funding_since(since_funding)
        self._last_state = state
        return _Venue(state, fills, funding, open_orders)

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
        self._record_fills(venue, everyone, mine, account, report, foreign)
        self._record_funding(venue, everyone, mine, account, report, foreign)
        open_cloids = {o.cloid for o in venue.open_orders if o.cloid}
        for trader in mine.values():
            await self._settle_pending(trader, open_cloids, reports, report)
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
                    marks=self._marks(trader, venue.state),
                    venue_qty={c: p.qty for c, p in venue.state.positions.items()},
                    filled_cloids={f.cloid for f in venue.fills if f.cloid},
                )
            report.protections += kept.placed + kept.resized + kept.canceled
            report.exits += len(kept.exits)
        if report.exits:
            # Emergency closes went out: book their fills now, not a pass later.
            try:
                venue = await self._fetch(since_fill, since_funding)
            except ExchangeError as exc:
                report.findings.append(f"venue unavailable after closing: {exc}")
                return
            everyone = self._traders()
            mine = {t.config_id: t for t in everyone if t.config_id in names}
            self._record_fills(venue, everyone, mine, account, report, foreign)
            open_cloids = {o.cloid for o in venue.open_orders if o.cloid}
            for trader in mine.values():
                await self._settle_pending(trader, open_cloids, {}, report)
        if full and account is not None:
            self._observe_foreign_orders(venue, everyone, account, now, report)
            self._check_positions(venue, everyone, mine, account, now, report, startup=startup)
            if await self._record_transfers(venue.state, account, now, report):
                self._check_equity(venue, account, mine, now, report, startup=startup)
                self._check_backing(account, mine, now, report)
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

    def _advance_cursors(self, venue: _Venue) -> None:
        if venue.fills:
            newest = max(f.time for f in venue.fills)
            if self._fill_cursor is None or newest > self._fill_cursor:
                self._fill_cursor = newest
        if venue.funding:
            newest = max(f.time for f in venue.funding)
            if self._funding_cursor is None or newest > self._funding_cursor:
                self._funding_cursor = newest

    # -- fills and funding ------------------------------------------------------------------

    def _record_fills(
        self,
        venue: _Venue,
        everyone: list[Trader],
        mine: dict[str, Trader],
        account: VenueAccount | None,
        report: SyncReport,
        foreign: set[str],
    ) -> None:
        by_cloid: dict[str, Trader] = {}
        recorded: set[str] = set(foreign)  # observed as foreign: never booked later
        for trader in everyone:
            for cloid in (*trader.pending, *trader.protections):
                by_cloid[cloid] = trader
            recorded.update(trader.fill_ids)
        for fill in sorted(venue.fills, key=lambda f: (f.time, f.fill_id)):
            if fill.fill_id in recorded:
                # Already in a book: fills are re-read for a while after they happen, when
                # their order (and maybe the coin's holder) may have changed since.
                continue
            owner = by_cloid.get(fill.cloid) if fill.cloid else None
            reason: CloseReason | None = None
            if owner is None:
                owner = _holder_at(everyone, fill.coin, fill.time)
                reason = CloseReason.LIQUIDATION if fill.liquidation else CloseReason.EXTERNAL
            if owner is None:
                if account is not None and account.observe_fill(
                    fill_id=fill.fill_id,
                    oid=fill.oid,
                    cloid=fill.cloid,
                    coin=fill.coin,
                    side=fill.side.value,
                    size=fill.size,
                    price=fill.price,
                    fee=fill.fee,
                    liquidation=fill.liquidation,
                    at=fill.time,
                ):
                    report.foreign += 1
                    self.alerts.alert(
                        "venue",
                        "foreign_fill",
                        f"{fill.side.value} {fill.size} {fill.coin} @ {fill.price} on the "
                        f"account was not placed by any trader (oid {fill.oid})",
                    )
                continue
            if owner.config_id not in mine:
                continue  # recorded by the pass that holds this trader's lock
            pending = owner.pending.get(fill.cloid) if fill.cloid else None
            was_recorded = owner.record_fill(
                fill.cloid or f"oid:{fill.oid}",
                price=fill.price,
                size=fill.size,
                fee=fill.fee,
                liquidity=fill.liquidity,
                at=fill.time,
                final=pending is not None and pending.filled + fill.size >= pending.size,
                coin=fill.coin,
                side=fill.side,
                reason=reason,
                fill_id=fill.fill_id,
                oid=fill.oid,
            )
            if was_recorded:
                recorded.add(fill.fill_id)
                report.fills += 1
                self.app.save_trader(owner)
                if reason is not None:
                    log.warning(
                        "trader=%s %s fill on the venue: %s %s %s @ %s",
                        owner.config_id,
                        reason.value,
                        fill.side.value,
                        fill.size,
                        fill.coin,
                        fill.price,
                    )

    def _record_funding(
        self,
        venue: _Venue,
        everyone: list[Trader],
        mine: dict[str, Trader],
        account: VenueAccount | None,
        report: SyncReport,
        foreign: set[str],
    ) -> None:
        recorded = {i for t in everyone for i in t.funding_ids} | foreign
        for row in sorted(venue.funding, key=lambda f: (f.time, f.funding_id)):
            if row.funding_id in recorded:
                continue
            owner = _funding_owner(row, everyone)
            if owner is None:
                if account is not None and account.observe_funding(
                    funding_id=row.funding_id,
                    coin=row.coin,
                    amount=row.amount,
                    rate=row.rate,
                    size=row.size,
                    at=row.time,
                ):
                    report.foreign += 1
                continue
            if owner.config_id not in mine:
                continue
            price = (
                abs(row.amount / (row.size * row.rate)) if row.size and row.rate else ZERO
            ).quantize(Decimal("0.000001"))
            if owner.settle_funding(
                coin=row.coin,
                amount=row.amount,
                rate=row.rate,
                price=price,
                at=row.time,
                funding_id=row.funding_id,
            ):
                recorded.add(row.funding_id)
                report.funding += 1
                self.app.save_trader(owner)

    # -- pending orders ---------------------------------------------------------------------

    async def _settle_pending(
        self,
        trader: Trader,
        open_cloids: set[str],
        reports: Mapping[str, OrderReport],
        report: SyncReport,
    ) -> None:
        for cloid in list(trader.pending):
            if cloid in open_cloids:
                continue  # still working on the venue
            known = reports.get(cloid)
            if known is None or not known.state.terminal:
                known = await self.desk.lookup(cloid)
            if known is None:
                report.findings.append(f"{trader.config_id}: order {cloid} lookup failed")
                continue
            if self._settle(trader, cloid, known):
                report.settled += 1
                self.app.save_trader(trader)

    def _settle(self, trader: Trader, cloid: str, known: OrderReport) -> bool:
        pending = trader.pending.get(cloid)
        if pending is None:
            return False
        now = self.clock.now()
        if known.state is OrderState.UNKNOWN:
            trader.record_order_rejected(
                cloid,
                reason=VenueRejection.NOT_ON_VENUE.value,
                detail="the venue has no order with this cloid (it was never sent or lost)",
                at=now,
            )
            return True
        if known.state is OrderState.REJECTED:
            trader.record_order_rejected(
                cloid, reason=known.reason or "rejected", detail=known.detail, at=now
            )
            return True
        if not known.state.terminal:
            return False
        if known.filled_size > pending.filled:
            # The venue filled more than the books show: the fills are not visible yet.
            waited = self._waiting_fills.get(cloid, 0) + 1
            self._waiting_fills[cloid] = waited
            if waited == self.policy.fill_grace_passes:
                self.alerts.alert(
                    trader.config_id,
                    "fills_missing",
                    f"order {cloid} filled {known.filled_size} on the venue but only "
                    f"{pending.filled} is in the fill feed",
                )
            return False
        self._waiting_fills.pop(cloid, None)
        reason = known.reason or (
            "ioc_remainder" if known.state is OrderState.FILLED else known.state.value
        )
        trader.record_order_canceled(
            cloid,
            reason=reason,
            detail=f"filled {pending.filled} of {pending.size}",
            at=now,
        )
        return True

    # -- what is not ours, and what disagrees -----------------------------------------------

    def _observe_foreign_orders(
        self,
        venue: _Venue,
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

    def _check_positions(
        self,
        venue: _Venue,
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

    async def _record_transfers(
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

    def _check_backing(
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

    def _check_equity(
        self,
        venue: _Venue,
        account: VenueAccount,
        mine: dict[str, Trader],
        now: datetime,
        report: SyncReport,
        *,
        startup: bool,
    ) -> None:
        if report.skipped or any(t.pending for t in self._traders()):
            return  # an order in flight makes the books and the venue momentarily differ
        equity, traders, unallocated = self.invariant(venue.state, account)
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


def _holder_at(traders: Iterable[Trader], coin: str, at: datetime) -> Trader | None:
    """The trader that held ``coin`` when a fill that is not its own happened: one whose
    position, order or protection in it already existed then (a later holder did not
    hold it yet: the fill is someone else's)."""
    for trader in traders:
        position = trader.positions.get(coin)
        if position is not None and position.opened_at <= at:
            return trader
        if any(p.coin == coin and p.placed_at <= at for p in trader.pending.values()):
            return trader
        if any(g.coin == coin and g.placed_at <= at for g in trader.protections.values()):
            return trader
    return None


def _funding_owner(row: VenueFunding, traders: Iterable[Trader]) -> Trader | None:
    """The trader whose position the payment was made on: the one holding the coin since
    before the payment, else the one whose position in it closed first after it."""
    traders = list(traders)
    for trader in traders:
        position = trader.positions.get(row.coin)
        if (
            position is not None
            and position.opened_at <= row.time
            and (position.qty > 0) == (row.size > 0)
        ):
            return trader
    closed = [
        (stamp, trader.config_id, trader)
        for trader in traders
        if (stamp := trader.closed_at.get(row.coin)) is not None and stamp >= row.time
    ]
    return min(closed, key=lambda c: (c[0], c[1]))[2] if closed else None
