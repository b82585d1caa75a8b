"""The synthetic order book a simulated taker trades against.

Rebuilt from the mid on every price update: level ``i`` (0 = best) sits
``spread/2 + i × step`` basis points from the mid, on a valid tick, and holds
``level_usd × growth^i × (1 + jitter × u)`` of notional, ``u`` uniform in [−1, 1] from a
generator seeded by (seed, coin, price-update number): same inputs, same book. Takers deplete
levels until the next price update.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
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


@dataclass(frozen=True)
class Book:
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first


@dataclass(frozen=True)
class Take:
    level: int
    px: Decimal
    sz: Decimal


def build_book(
    model: BookModel, coin: str, mid: Decimal, sz_decimals: int, seed: int, epoch: int
) -> Book:
    rng = random.Random(f"{seed}:{coin}:{epoch}")
    usd = model.usd_for(coin)
    bids: list[Level] = []
    asks: list[Level] = []
    bound_bid, bound_ask = mid, mid
    half_spread = model.spread_bps / 2
    if model.spread_jitter:  # drawn only when asked: a fixed spread keeps its books
        u = Decimal(rng.randint(-_NOISE_STEPS, _NOISE_STEPS)) / _NOISE_STEPS
        half_spread *= ONE + model.spread_jitter * u
    for i in range(model.levels):
        offset = (half_spread + model.step_bps * i) / BPS
        bid = to_tick(mid * (ONE - offset), sz_decimals, up=False)
        if bid >= bound_bid:  # keep levels strictly apart (and strictly below the mid)
            bid = to_tick(bound_bid - tick(bound_bid, sz_decimals), sz_decimals, up=False)
        ask = to_tick(mid * (ONE + offset), sz_decimals, up=True)
        if ask <= bound_ask:
            ask = to_tick(bound_ask + tick(bound_ask, sz_decimals), sz_decimals, up=True)
        notional = usd * model.growth**i
        for px, side in ((bid, bids), (ask, asks)):
            if px <= 0:
                continue
            noise = Decimal(rng.randint(-_NOISE_STEPS, _NOISE_STEPS)) / _NOISE_STEPS
            size = floor_size(notional * (ONE + model.jitter * noise) / px, sz_decimals)
            side.append(Level(px, max(size, lot(sz_decimals)), rng.randint(1, 4 + i)))
        bound_bid, bound_ask = bid, ask
    return Book(tuple(bids), tuple(asks))


def available(levels: tuple[Level, ...], taken: Mapping[int, Decimal]) -> list[Level]:
    """The levels with what takers left on them (emptied levels dropped)."""
    out = []
    for i, level in enumerate(levels):
        left = level.sz - taken.get(i, ZERO)
        if left > 0:
            out.append(Level(level.px, left, level.n))
    return out


def plan_take(
    levels: tuple[Level, ...],
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
    levels: tuple[Level, ...], taken: Mapping[int, Decimal], notional: Decimal
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
