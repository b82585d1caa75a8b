"""The synthetic book: the same seed gives the same book; spread jitter moves the best
levels per price update (fill randomness for replicas) and nothing else when off."""

from __future__ import annotations

from decimal import Decimal

from infrastructure.simulator.book import build_book
from infrastructure.simulator.config import BookModel

MID = Decimal("100000")


def test_a_fixed_spread_gives_the_same_book_for_every_seed_at_the_best_level() -> None:
    model = BookModel()
    books = [build_book(model, "BTC", MID, 5, seed, 7) for seed in range(5)]
    assert len({b.asks[0].px for b in books}) == 1  # a small taker fills alike
    assert build_book(model, "BTC", MID, 5, 3, 7) == books[3]


def test_spread_jitter_moves_the_best_prices_by_seed_within_its_bound() -> None:
    model = BookModel(spread_bps=Decimal(10), spread_jitter=Decimal("0.5"))
    asks = {build_book(model, "BTC", MID, 5, seed, 7).asks[0].px for seed in range(20)}
    bids = {build_book(model, "BTC", MID, 5, seed, 7).bids[0].px for seed in range(20)}
    assert len(asks) > 5
    assert len(bids) > 5
    # Half-spread 5 bps ± 50 %: the best ask lies 2.5–7.5 bps above the mid (plus a tick).
    assert all(MID * Decimal("1.00025") <= px <= MID * Decimal("1.00076") for px in asks)
    assert all(MID * Decimal("0.99924") <= px <= MID * Decimal("0.99975") for px in bids)
    same = build_book(model, "BTC", MID, 5, 4, 7)
    assert build_book(model, "BTC", MID, 5, 4, 7) == same  # still seeded
