"""What a reconciliation pass reads from the venue, how it is tuned and what it reports, and
who holds what on a shared account (the pieces every part of the pass shares)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from application.ports import VenueAccountState, VenueFill, VenueFunding, VenueOrder
from domain.trader import Trader
from domain.values import ZERO


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
    watched: int = 0  # unprotected positions checked against the price
    idle: bool = False  # not run: nothing changed since a pass that had nothing to do

    def did_nothing(self) -> bool:
        """Booked, placed, found and watched nothing: run again on the same venue account
        and books, a pass does the same (nothing)."""
        counts = (self.fills, self.funding, self.settled, self.protections, self.exits)
        more = (self.foreign, self.transfers, self.watched)
        return not any(counts + more) and not (self.skipped or self.drift or self.findings)


@dataclass
class VenueRead:
    """One read of the venue account: its state, fills, funding payments and open orders."""

    state: VenueAccountState
    fills: list[VenueFill]
    funding: list[VenueFunding]
    open_orders: list[VenueOrder]


#: The holder of a coin that no trader holds but the account does (someone else's trade).
OUTSIDE = "(outside the arena)"


def held_coins(trader: Trader) -> list[str]:
    """The coins a trader holds (a position, an order in flight or a protection), sorted."""
    return sorted(
        set(trader.positions)
        | {p.coin for p in trader.pending.values()}
        | {g.coin for g in trader.protections.values()}
    )


def holders(
    traders: Iterable[Trader], held: Callable[[Trader], list[str]] = held_coins
) -> dict[str, str]:
    """coin → the trader holding it: a position, an order in flight or a protection."""
    result: dict[str, str] = {}
    for trader in traders:
        for coin in held(trader):
            result.setdefault(coin, trader.config_id)
    return result


class HeldCoins:
    """``held_coins`` kept per trader copy and version: every cycle asks which coins the
    account's other traders hold, and with many traders rebuilding each one's set was most
    of that question. A trader's holdings change only with its events (its version)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Trader, int, list[str]]] = {}

    def __call__(self, trader: Trader) -> list[str]:
        kept = self._kept.get(trader.config_id)
        version = trader.version
        if kept is not None and kept[0] is trader and kept[1] == version:
            return kept[2]
        coins = held_coins(trader)
        self._kept[trader.config_id] = (trader, version, coins)
        return coins


def venue_marks(trader: Trader, state: VenueAccountState) -> dict[str, Decimal]:
    """The trader's marks, with the venue's where it has a position."""
    marks = dict(trader.marks)
    marks.update({coin: p.mark_price for coin, p in state.positions.items()})
    return marks


def allocated(traders: Iterable[Trader]) -> Decimal:
    return sum((t.allocation for t in traders), start=ZERO)


def trader_equity(traders: Iterable[Trader], state: VenueAccountState) -> Decimal:
    """Σ trader equity at the venue's marks."""
    return sum((t.account(venue_marks(t, state)).equity for t in traders), start=ZERO)
