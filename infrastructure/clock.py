"""Clocks: wall time, and an accelerated replay clock that can resume."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

MIN_REAL_SLEEP_S = 0.01


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ReplayClock:
    """Simulated time that runs ``speed`` times faster than the wall clock.

    ``now()`` = start + (wall time elapsed) × speed. ``resume_at`` moves the start so
    that a restarted arena continues where its recorded history stopped.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("the replay start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"the replay speed must be positive, got {speed}")
        self.speed = speed
        self._base = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._t0) * self.speed
        return self._base + timedelta(seconds=elapsed)

    def resume_at(self, at: datetime) -> None:
        if at > self.now():
            self._base = at
            self._t0 = time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(MIN_REAL_SLEEP_S, seconds / self.speed))


class ManualClock:
    """A clock that only moves when told to (tests and benchmarks)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def resume_at(self, at: datetime) -> None:
        self._now = max(self._now, at)

    async def sleep(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)
