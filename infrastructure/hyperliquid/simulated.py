"""The in-process simulator, traded through the very adapter that trades Hyperliquid.

Orders are built, signed and read back exactly as on the venue; only the transport
differs (the simulator's gateway in this process instead of HTTP), and the arena tells the
venue the prices and the time (``mark``) because it has no market of its own.

The simulated account has a fixed address derived from the provider id; its key does not
exist. The engine trades it through an agent key made afresh at every start and approved
by configuration (never an HTTP route), so no secret is stored anywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import numpy as np
from eth_account import Account

from application.ports import MinutePath
from infrastructure.hyperliquid.exchange import HyperliquidExchange, RetryPolicy
from infrastructure.hyperliquid.nonces import NonceManager
from infrastructure.hyperliquid.transport import InProcessTransport
from infrastructure.simulator.gateway import SimGateway

AGENT_NAME = "nof0-engine"


def sim_account_address(provider: str) -> str:
    return "0x" + hashlib.sha256(f"nof0/sim/{provider}".encode()).hexdigest()[:40]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


MINUTE_MS = 60_000

#: One price update: (venue time in ms, mids, funding rates).
Update = tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]


def path_updates(
    venue_ms: int, path: MinutePath, at_ms: int, funding: Mapping[str, Decimal]
) -> list[Update]:
    """The price updates that walk ``path`` on a venue last updated at ``venue_ms``, its
    close at ``at_ms`` (the mark's time, at or after the minute's close).

    The points before the close are stamped evenly over the part of the minute the venue
    has not seen yet, ``(max(venue_ms, close − 1 min), close)``: strictly inside the
    minute, after the venue's last update (venue time never goes backwards), before the
    close; so an hour's funding is settled once, at the close point, as a close-only mark
    settled it. A venue already at or past the close (the minute walked at an earlier
    tick, or by the venue before a restart) takes the close only. The stamps are nominal:
    the candle does not say when its extremes happened. Each point carries the minute's
    funding rates (they only matter at the settlement)."""
    close_ms = _ms(path.closes_at)
    updates: list[Update] = []
    if venue_ms < close_ms:
        start = max(venue_ms, close_ms - MINUTE_MS)
        inner = path.points[:-1]
        steps = len(inner) + 1
        for k, prices in enumerate(inner, start=1):
            updates.append((start + (close_ms - start) * k // steps, prices, funding))
    updates.append((at_ms, path.points[-1], funding))
    return updates


class SimulatedHyperliquid(HyperliquidExchange):
    def __init__(
        self,
        name: str,
        gateway: SimGateway,
        *,
        fund_usdc: Decimal,
        clock_ms: Callable[[], int],
        fee_taker: Decimal,
        min_equity: Decimal = Decimal(0),
        retry: RetryPolicy | None = None,
        inline: bool = False,
    ) -> None:
        """``inline``: requests run on the event loop's thread (a backtest: nothing else
        waits on the loop), not on a worker thread."""
        account = sim_account_address(name)
        agent = Account.create()
        transport = InProcessTransport(
            lambda path, body: gateway.handle(path, body, client="in-process"),
            name=f"sim:{name}",
            blocking=not inline,
        )
        super().__init__(
            name,
            transport,
            wallet=agent,
            account_address=account,
            nonces=NonceManager(clock_ms),
            fee_taker=fee_taker,
            min_equity=min_equity,
            retry=retry or RetryPolicy(attempts=1, backoff_s=0.0),
        )
        self.gateway = gateway
        self._clock_ms = clock_ms
        self._fund_usdc = fund_usdc
        self._agent = agent.address

    async def start(self) -> list[str]:
        notes = []
        # The venue's clock follows the arena's: bring it to now before anything is signed
        # (nonces must lie near the venue's time).
        self.gateway.advance(self._clock_ms())
        if self.gateway.resolve_signer(self.main_address) is None:
            self.gateway.fund(self.main_address, self._fund_usdc)
            notes.append(f"funded simulated account {self.main_address} with {self._fund_usdc}")
        self.gateway.approve_agent_trusted(self.main_address, self._agent, AGENT_NAME)
        return notes + await super().start()

    def mark(
        self,
        prices: Mapping[str, Decimal],
        at: datetime,
        funding: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.gateway.advance(_ms(at), dict(prices), funding_rates=dict(funding or {}) or None)

    def mark_path(
        self,
        path: MinutePath,
        at: datetime,
        funding: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Walk the minute's path (``path_updates``): each point a full price update, so a
        trigger, a resting limit or a liquidation the path reaches sets off at that point's
        price and book."""
        rates = dict(funding or {})
        for now_ms, prices, point_rates in path_updates(self.gateway.now_ms, path, _ms(at), rates):
            self.gateway.advance(now_ms, dict(prices), funding_rates=dict(point_rates) or None)

    def account_revision(self) -> bytes:
        """Changes with every fill, order change, funding payment or transfer of this
        account, not with prices (what lets a reconciliation pass with nothing new to read
        be left out: ``VenueSync._unchanged``)."""
        return self.gateway.account_revision(self.main_address)

    def quiet_marks(
        self,
        times: Sequence[datetime],
        lows: Mapping[str, np.ndarray],
        highs: Mapping[str, np.ndarray],
        funding_rate: Decimal,
    ) -> int:
        """How many of the coming ``mark`` calls at ``times`` (prices within ``lows`` and
        ``highs``) are sure to set nothing off on the venue."""
        return self.gateway.quiet_updates([_ms(t) for t in times], lows, highs, funding_rate)

    def mark_quiet(
        self,
        marks: Sequence[tuple[datetime, MinutePath, Mapping[str, Decimal]]],
    ) -> None:
        """``mark_path`` calls ``quiet_marks`` proved quiet, in bulk: each ``(at, path,
        funding)`` walked as ``mark_path`` would walk it (the same updates, the same
        stamps: so the venue's update count, which seeds its books, and its time move
        exactly as minute by minute), without the checks."""
        self.gateway.take_quiet(_walk(self.gateway.now_ms, marks))


#: The last walk (marks, the venue time it started from, its updates): a backtest marks
#: every venue of a market with the same minutes (a tuple), each venue at the same time.
_walked: tuple[object, int, tuple[Update, ...]] | None = None


def _walk(
    venue_ms: int, marks: Sequence[tuple[datetime, MinutePath, Mapping[str, Decimal]]]
) -> tuple[Update, ...]:
    """The updates ``mark_path`` would walk for each of ``marks`` in turn, from a venue
    last updated at ``venue_ms``; for the same marks (a tuple) from the same time, the
    next venue's, the same updates again (and so ``take_quiet`` reads them once)."""
    global _walked
    if _walked is not None and _walked[0] is marks and _walked[1] == venue_ms:
        return _walked[2]
    start = venue_ms
    updates: list[Update] = []
    for at, path, funding in marks:
        walked = path_updates(venue_ms, path, _ms(at), funding)
        venue_ms = max(venue_ms, walked[-1][0])
        updates.extend(walked)
    answer = tuple(updates)
    _walked = (marks, start, answer) if isinstance(marks, tuple) else None
    return answer
