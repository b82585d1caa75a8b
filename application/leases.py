"""Leases: which engine may act for which trader when several share one PostgreSQL.

A lease is a named right (``trader:<config id>``, ``venue:<provider>``) held by one engine
(its ``owner`` id) until ``expires_at`` on the database's clock. Its ``token`` rises every
time the lease is taken afresh, so it is a fencing token: a write or an order checked
against ``(name, token)`` is refused once another engine holds the lease, even if the old
holder is still running after a pause and believes it is the holder.

An engine announces itself with its own lease ``engine:<owner>``; the live engines' count
sets each one's fair share of the traders (``ceil(traders / engines)``), so a newcomer gets
traders handed over and a dead engine's traders are taken by the rest once its leases
expire.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

ENGINE_PREFIX = "engine:"
TRADER_PREFIX = "trader:"
VENUE_PREFIX = "venue:"


def trader_lease(trader_id: str) -> str:
    return f"{TRADER_PREFIX}{trader_id}"


def venue_lease(provider: str) -> str:
    return f"{VENUE_PREFIX}{provider}"


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    owner: str
    token: int
    #: Seconds left on the database's clock when the lease was granted or renewed.
    remaining: float
    #: The owner before this grant ("" for a new lease); another owner means a takeover.
    previous_owner: str = ""


class LeaseStore(Protocol):
    def acquire(self, name: str, owner: str, ttl: float) -> Lease | None:
        """Take ``name`` if it is free, expired or already ours (a new token); else None."""
        ...

    def renew(self, lease: Lease, ttl: float) -> Lease | None:
        """Extend a lease still held under its token; None when it was lost."""
        ...

    def release(self, lease: Lease) -> None:
        """Hand the lease back at once (a graceful stop), if still held under its token."""
        ...

    def live(self, prefix: str) -> list[Lease]:
        """Unexpired leases whose name starts with ``prefix``."""
        ...

    def current(self, leases: Iterable[Lease], margin: float) -> bool:
        """Every lease still held under its token with at least ``margin`` seconds left."""
        ...


class LeaseLost(Exception):
    """An action needed a lease this engine no longer holds: it is refused, not retried."""


def fair_share(traders: int, engines: int) -> int:
    return math.ceil(traders / max(1, engines))


@dataclass
class LeaseKeeper:
    """Takes, renews and hands back this engine's leases; run ``tick`` every ``ttl / 3``.

    ``wanted`` are the trader ids of the configuration; the keeper holds at most a fair
    share of them, preferring those it holds already (no needless hand-over), and hands
    back the surplus when more engines are live. ``extra`` names (the venue writer) are
    taken by whoever can, one engine at a time."""

    store: LeaseStore
    owner: str
    wanted: tuple[str, ...]
    extra: tuple[str, ...] = ()
    ttl: float = 15.0
    monotonic: Callable[[], float] = time.monotonic
    held: dict[str, Lease] = field(default_factory=dict)
    #: Local monotonic deadline per held lease (conservative: measured before the request).
    deadlines: dict[str, float] = field(default_factory=dict)
    #: Names taken over from another owner since the last ``drain_takeovers``.
    takeovers: list[Lease] = field(default_factory=list)
    #: Names lost to another engine (or expired) since the last ``drain_lost``.
    lost: list[str] = field(default_factory=list)
    #: The live engines' owner ids at the last tick (this one included).
    engines: tuple[str, ...] = ()

    @property
    def engine_name(self) -> str:
        return f"{ENGINE_PREFIX}{self.owner}"

    def traders(self) -> frozenset[str]:
        """Trader ids this engine may act for now (held, with time left)."""
        now = self.monotonic()
        return frozenset(
            name.removeprefix(TRADER_PREFIX)
            for name in self.held
            if name.startswith(TRADER_PREFIX) and self.deadlines.get(name, 0.0) > now
        )

    def engines_on_host(self) -> int:
        """Live engines whose owner id names this one's host (``<host>:<where>``), itself
        counted: they share the host's IP, hence the venue's per-IP request budget."""
        host = self.owner.partition(":")[0]
        return max(1, sum(1 for owner in self.engines if owner.partition(":")[0] == host))

    def holds(self, name: str, margin: float = 0.0) -> bool:
        return name in self.held and self.deadlines.get(name, 0.0) - margin > self.monotonic()

    def tick(self) -> None:
        self._keep(self.engine_name)
        self.engines = tuple(lease.owner for lease in self.store.live(ENGINE_PREFIX))
        share = fair_share(len(self.wanted), len(self.engines))
        names = [trader_lease(t) for t in self.wanted]
        mine = [n for n in names if n in self.held]
        for name in mine:
            self._keep(name)
        mine = [n for n in names if n in self.held]
        # Surplus goes back highest name first, so two engines agree on what moves.
        for name in sorted(mine, reverse=True)[: max(0, len(mine) - share)]:
            self._release(name)
        for name in names:
            if sum(1 for n in names if n in self.held) >= share:
                break
            if name not in self.held:
                self._take(name)
        for name in self.extra:
            if name in self.held:
                self._keep(name)
            else:
                self._take(name)

    def release_all(self) -> None:
        for name in list(self.held):
            self._release(name)

    def drain_takeovers(self) -> list[Lease]:
        taken, self.takeovers = self.takeovers, []
        return taken

    def drain_lost(self) -> list[str]:
        lost, self.lost = self.lost, []
        return lost

    def _take(self, name: str) -> None:
        started = self.monotonic()
        lease = self.store.acquire(name, self.owner, self.ttl)
        if lease is None:
            return
        self._hold(lease, started)
        if lease.previous_owner and lease.previous_owner != self.owner:
            self.takeovers.append(lease)

    def _keep(self, name: str) -> None:
        started = self.monotonic()
        lease = self.held.get(name)
        renewed = None if lease is None else self.store.renew(lease, self.ttl)
        if renewed is None and lease is not None:
            self._forget(name)
            self.lost.append(name)
        if renewed is None:
            # Our own engine lease, or a lost one: take it afresh (a new token) if free.
            if name == self.engine_name:
                self._take(name)
            return
        self._hold(renewed, started)

    def _hold(self, lease: Lease, started: float) -> None:
        self.held[lease.name] = lease
        self.deadlines[lease.name] = started + lease.remaining

    def _release(self, name: str) -> None:
        lease = self.held.get(name)
        self._forget(name)
        if lease is not None:
            self.store.release(lease)

    def _forget(self, name: str) -> None:
        self.held.pop(name, None)
        self.deadlines.pop(name, None)
