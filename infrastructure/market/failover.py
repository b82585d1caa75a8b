"""Hot standby across market data providers.

Every call tries the providers in order and returns the first good answer, so the primary is
retried first on each call and is preferred again as soon as it answers (one attempt per call
while it is down: cheap when it fails fast, bounded by its transport timeout otherwise).

* A :class:`LookAheadError` is a bug, not an outage: it propagates at once, never hidden by
  trying another provider.
* A snapshot counts as good only when it has every coin asked for and each coin's data is
  within the serving provider's ``max_staleness_s`` at the as-of time (the check the cycle
  makes), so a provider serving old data hands over to the next one.
* When every provider fails, the error raised is the most informative one (:class:`StaleData`
  if any provider said stale, else :class:`MissingData`) and lists each provider's failure.
* The provider serving each kind of call (snapshot, mids, funding) is remembered and every
  switch is logged on ``nof0.market``; ``active`` and ``max_staleness_s`` are the snapshot
  provider's, since the cycle judges a snapshot's freshness with that bound.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from application.ports import (
    FundingFeed,
    LookAheadError,
    MarketData,
    MarketDataError,
    MarketSnapshot,
    MissingData,
    StaleData,
)

log = logging.getLogger("nof0.market")

_T = TypeVar("_T")

SNAPSHOT = "snapshot"
MIDS = "mids"
FUNDING = "funding"


def _names(providers: Sequence[MarketData]) -> list[str]:
    names: list[str] = []
    for index, provider in enumerate(providers):
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not name:
            name = type(provider).__name__
        if name in names:
            name = f"{name}#{index}"
        names.append(name)
    return names


class FailoverMarket:
    """``MarketData`` (and ``FundingFeed``) over providers tried in order."""

    def __init__(self, providers: Sequence[MarketData], *, name: str = "failover") -> None:
        if not providers:
            raise ValueError("a failover market needs at least one provider")
        self.name = name
        self.providers: tuple[MarketData, ...] = tuple(providers)
        self.names: tuple[str, ...] = tuple(_names(self.providers))
        self._serving: dict[str, int] = {}
        #: Changes of the serving provider so far, any kind of call (the metrics read it).
        self.switches = 0
        #: The bound of the provider that served the last snapshot (the cycle reads it).
        self.max_staleness_s: float = self.providers[0].max_staleness_s

    @property
    def active(self) -> str:
        """The name of the provider that served the last snapshot (the primary at first)."""
        return self.names[self._serving.get(SNAPSHOT, 0)]

    def serving(self, kind: str) -> str:
        """The provider that served the last ``snapshot``, ``mids`` or ``funding`` call."""
        return self.names[self._serving.get(kind, 0)]

    async def snapshot(self, coins: Sequence[str], as_of: datetime) -> MarketSnapshot:
        def check(index: int, snap: MarketSnapshot) -> None:
            bound = self.providers[index].max_staleness_s
            for coin in coins:
                data = snap.coins.get(coin)
                if data is None:
                    raise MissingData(f"{coin}: not in the snapshot")
                age = (as_of - data.data_time).total_seconds()
                if age > bound:
                    raise StaleData(f"{coin} data is {age:.3f}s old (bound {bound:g}s)")

        index, snap = await self._first(SNAPSHOT, lambda p: p.snapshot(coins, as_of), check)
        self.max_staleness_s = self.providers[index].max_staleness_s
        return snap

    async def mids(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        def check(index: int, mids: dict[str, Decimal]) -> None:
            missing = [coin for coin in coins if coin not in mids]
            if missing:
                raise MissingData(f"no mid for {', '.join(missing)}")

        _, mids = await self._first(MIDS, lambda p: p.mids(coins, as_of), check)
        return mids

    async def funding_rates(self, coins: Sequence[str], as_of: datetime) -> dict[str, Decimal]:
        async def call(provider: MarketData) -> dict[str, Decimal]:
            if not isinstance(provider, FundingFeed):
                raise MissingData("has no funding feed")
            return await provider.funding_rates(coins, as_of)

        def check(index: int, rates: dict[str, Decimal]) -> None:
            missing = [coin for coin in coins if coin not in rates]
            if missing:
                raise MissingData(f"no funding rate for {', '.join(missing)}")

        _, rates = await self._first(FUNDING, call, check)
        return rates

    async def _first(
        self,
        kind: str,
        call: Callable[[MarketData], Awaitable[_T]],
        check: Callable[[int, _T], None],
    ) -> tuple[int, _T]:
        failures: list[tuple[str, MarketDataError]] = []
        for index, provider in enumerate(self.providers):
            try:
                result = await call(provider)
                check(index, result)
            except LookAheadError:
                raise  # a bug in the provider: never papered over by another one
            except MarketDataError as exc:
                failures.append((self.names[index], exc))
                continue
            self._switched(kind, index, failures)
            return index, result
        raise self._all_failed(kind, failures)

    def _switched(self, kind: str, index: int, failures: list[tuple[str, MarketDataError]]) -> None:
        before = self._serving.get(kind, 0)
        self._serving[kind] = index
        if index != before:
            self.switches += 1
        if index > before:
            log.warning(
                "market %s: %s now from %s (%s)",
                self.name,
                kind,
                self.names[index],
                _describe(failures),
            )
        elif index < before:
            log.info(
                "market %s: %s back on %s (was %s)",
                self.name,
                kind,
                self.names[index],
                self.names[before],
            )

    def _all_failed(
        self, kind: str, failures: list[tuple[str, MarketDataError]]
    ) -> MarketDataError:
        errors = [exc for _, exc in failures]
        kind_of_error: type[MarketDataError]
        if any(isinstance(exc, StaleData) for exc in errors):
            kind_of_error = StaleData
        elif any(isinstance(exc, MissingData) for exc in errors):
            kind_of_error = MissingData
        else:
            kind_of_error = MarketDataError
        message = (
            f"market {self.name}: every provider failed the {kind} call: {_describe(failures)}"
        )
        error = kind_of_error(message)
        error.__cause__ = errors[-1] if errors else None
        return error


def _describe(failures: list[tuple[str, MarketDataError]]) -> str:
    return "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failures)
