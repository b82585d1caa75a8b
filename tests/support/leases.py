"""An in-memory lease store with the PostgreSQL store's rules, on a hand-moved clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from application.leases import Lease


@dataclass
class _Row:
    owner: str
    token: int
    expires_at: float


@dataclass
class MemoryLeaseStore:
    now: float = 0.0
    rows: dict[str, _Row] = field(default_factory=dict)

    def clock(self) -> float:
        return self.now

    def acquire(self, name: str, owner: str, ttl: float) -> Lease | None:
        row = self.rows.get(name)
        if row is not None and row.expires_at > self.now and row.owner != owner:
            return None
        previous = "" if row is None else row.owner
        token = 1 if row is None else row.token + 1
        self.rows[name] = _Row(owner, token, self.now + ttl)
        return Lease(name, owner, token, ttl, previous_owner=previous)

    def renew(self, lease: Lease, ttl: float) -> Lease | None:
        row = self.rows.get(lease.name)
        if row is None or (row.owner, row.token) != (lease.owner, lease.token):
            return None
        if row.expires_at <= self.now:
            return None
        row.expires_at = self.now + ttl
        return Lease(lease.name, lease.owner, lease.token, ttl, lease.previous_owner)

    def release(self, lease: Lease) -> None:
        row = self.rows.get(lease.name)
        if row is not None and (row.owner, row.token) == (lease.owner, lease.token):
            row.expires_at = self.now

    def live(self, prefix: str) -> list[Lease]:
        return [
            Lease(name, row.owner, row.token, row.expires_at - self.now)
            for name, row in sorted(self.rows.items())
            if name.startswith(prefix) and row.expires_at > self.now
        ]

    def current(self, leases: Iterable[Lease], margin: float) -> bool:
        for lease in leases:
            row = self.rows.get(lease.name)
            if row is None or (row.owner, row.token) != (lease.owner, lease.token):
                return False
            if row.expires_at <= self.now + margin:
                return False
        return True
