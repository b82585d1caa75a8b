"""The synthetic order book a simulated taker trades against.

Rebuilt from the mid on every price update: level ``i`` (0 = best) sits
``spread/2 + i × step`` basis points from the mid, on a valid tick, and holds
``level_usd × growth^i × (1 + jitter × u)`` of notional, ``u`` uniform in [−1, 1] from a
generator seeded by (seed, coin, price-update number): same inputs, same book. Takers deplete
levels until the next price update.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

from infrastructure.simulator.config import BookModel
from infrastructure.simulator.rules import ONE, ZERO, floor_size, lot, tick, to_tick

BPS = Decimal(10_000)
_NOISE_STEPS = 1_000_000


@dataclass(frozen=True)
class Level:
    px: Decimal
    sz: Decimal
    n: int


class Book:
    """The two sides of one price update's book, built level by level as far as they are
    read: a taker or an impact price reads the best levels only (a funding hour's premium
    reads one of twenty), ``bids`` and ``asks`` (the whole book, ``l2Book``) build the
    rest. The generator draws for each level in the same order whatever is read, so the
    levels come out the same however far, and in whatever order, they are read."""

    __slots__ = (
        "_asks",
        "_bids",
        "_bound",
        "_coin",
        "_half",
        "_i",
        "_mid",
        "_model",
        "_rng",
        "_sz_decimals",
        "_usd",
    )

    def __init__(
        self, model: BookModel, coin: str, mid: Decimal, sz_decimals: int, seed: int, epoch: int
    ) -> None:
        self._rng = random.Random(f"{seed}:{coin}:{epoch}")
        self._model = model
        self._coin = coin
        self._mid = mid
        self._sz_decimals = sz_decimals
        self._usd = model.usd_for(coin)
        half_spread = model.spread_bps / 2
        if model.spread_jitter:  # drawn only when asked: a fixed spread keeps its books
            u = Decimal(self._rng.randint(-_NOISE_STEPS, _NOISE_STEPS)) / _NOISE_STEPS
            half_spread *= ONE + model.spread_jitter * u
        self._half = half_spread
        self._bound = (mid, mid)
        self._i = 0
        self._bids: list[Level] = []
        self._asks: list[Level] = []

    def _grow(self) -> bool:
        """Build the next level of both sides; False when all are built."""
        model, i = self._model, self._i
        if i >= model.levels:
            return False
        mid, sz_decimals, rng = self._mid, self._sz_decimals, self._rng
        bound_bid, bound_ask = self._bound
        offset = (self._half + model.step_bps * i) / BPS
        bid = to_tick(mid * (ONE - offset), sz_decimals, up=False)
        if bid >= bound_bid:  # keep levels strictly apart (and strictly below the mid)
            bid = to_tick(bound_bid - tick(bound_bid, sz_decimals), sz_decimals, up=False)
        ask = to_tick(mid * (ONE + offset), sz_decimals, up=True)
        if ask <= bound_ask:
            ask = to_tick(bound_ask + tick(bound_ask, sz_decimals), sz_decimals, up=True)
        notional = self._usd * model.growth**i
        for px, side in ((bid, self._bids), (ask, self._asks)):
            if px <= 0:
                continue
            noise = Decimal(rng.randint(-_NOISE_STEPS, _NOISE_STEPS)) / _NOISE_STEPS
            size = floor_size(notional * (ONE + model.jitter * noise) / px, sz_decimals)
            side.append(Level(px, max(size, lot(sz_decimals)), rng.randint(1, 4 + i)))
        self._bound = (bid, ask)
        self._i = i + 1
        return True

    def side(self, *, bids: bool) -> Iterator[Level]:
        """One side's levels, best first, each built when it is reached."""
        levels = self._bids if bids else self._asks
        k = 0
        while True:
            while k >= len(levels):
                if not self._grow():
                    return
            yield levels[k]
            k += 1

    @property
    def bids(self) -> tuple[Level, ...]:  # best (highest) first
        while self._grow():
            pass
        return tuple(self._bids)

    @property
    def asks(self) -> tuple[Level, ...]:  # best (lowest) first
        while self._grow():
            pass
        return tuple(self._asks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Book):
            return NotImplemented
        return (self.bids, self.asks) == (other.bids, other.asks)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Book(bids={self.bids!r}, asks={self.asks!r})"


@dataclass(frozen=True)
class Take:
    level: int
    px: Decimal
    sz: Decimal


def build_book(
    model: BookModel, coin: str, mid: Decimal, sz_decimals: int, seed: int, epoch: int
) -> Book:
    """The book of price update ``epoch``: levels built as they are read (``Book``)."""
    return Book(model, coin, mid, sz_decimals, seed, epoch)


def available(levels: Iterable[Level], taken: Mapping[int, Decimal]) -> list[Level]:
    """The levels with what takers left on them (emptied levels dropped)."""
    out = []
    for i, level in enumerate(levels):
        left = level.sz - taken.get(i, ZERO)
        if left > 0:
            out.append(Level(level.px, left, level.n))
    return out


def plan_take(
    levels: Iterable[Level],
    taken: Mapping[int, Decimal],
    *,
    is_buy: bool,
    limit_px: Decimal,
    size: Decimal,
) -> list[Take]:
    """What a taker of ``size`` up to ``limit_px`` would get, best level first (no mutation)."""
    takes: list[Take] = []
    remaining = size
    for i, level in enumerate(levels):
        if remaining <= 0 or (level.px > limit_px if is_buy else level.px < limit_px):
            break
        left = level.sz - taken.get(i, ZERO)
        if left <= 0:
            continue
        take = min(left, remaining)
        takes.append(Take(i, level.px, take))
        remaining -= take
    return takes


def impact_price(
    levels: Iterable[Level], taken: Mapping[int, Decimal], notional: Decimal
) -> Decimal | None:
    """Average price of a taker trading ``notional`` USD into these levels; None if too thin."""
    left_usd = notional
    base = ZERO
    for i, level in enumerate(levels):
        depth = (level.sz - taken.get(i, ZERO)) * level.px
        if depth <= 0:
            continue
        use = min(depth, left_usd)
        base += use / level.px
        left_usd -= use
        if left_usd <= 0:
            return notional / base
    return None
