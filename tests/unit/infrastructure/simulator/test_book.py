"""The synthetic book: the same seed gives the same book; spread jitter moves the best
levels per price update (fill randomness for replicas) and nothing else when off."""

from __future__ import annotations

import itertools
from decimal import Decimal

from infrastructure.simulator.book import build_book, impact_price, plan_take
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


def test_a_book_read_in_part_has_the_levels_of_a_book_read_whole() -> None:
    # The book is built as far as it is read: reading the best levels first, one side
    # before the other, must give the levels a whole read gives.
    model = BookModel(spread_jitter=Decimal("0.5"))
    whole = build_book(model, "BTC", MID, 5, 3, 7)
    bids, asks = whole.bids, whole.asks
    assert len(bids) == len(asks) == model.levels
    part = build_book(model, "BTC", MID, 5, 3, 7)
    best_asks = list(itertools.islice(part.side(bids=False), 3))
    best_bid = next(part.side(bids=True))
    assert best_asks == list(asks[:3])
    assert best_bid == bids[0]
    assert part.bids == bids
    assert part.asks == asks
    assert part == whole
    other = build_book(model, "BTC", MID, 5, 4, 7)
    assert other != whole


def test_the_premium_from_a_book_read_in_part_is_the_whole_books() -> None:
    # A funding hour's premium reads only the levels the impact notional reaches.
    from infrastructure.simulator.trading import IMPACT_USD

    model = BookModel()
    for epoch in range(5):
        lazy = build_book(model, "BTC", MID, 5, 0, epoch)
        whole = build_book(model, "BTC", MID, 5, 0, epoch)
        full_bids, full_asks = whole.bids, whole.asks
        for side, levels in ((True, full_bids), (False, full_asks)):
            lazily = impact_price(lazy.side(bids=side), {}, IMPACT_USD["BTC"])
            assert lazily is not None
            assert lazily == impact_price(levels, {}, IMPACT_USD["BTC"])
        # A thin book (more notional than the levels hold) is None either way.
        thin = build_book(model, "BTC", MID, 5, 0, epoch)
        assert impact_price(thin.side(bids=True), {}, Decimal(10**12)) is None
        assert impact_price(full_bids, {}, Decimal(10**12)) is None


def test_a_take_walks_the_same_levels_read_in_part_or_whole() -> None:
    model = BookModel()
    whole = build_book(model, "BTC", MID, 5, 1, 2)
    taken = {0: whole.asks[0].sz}  # the best level emptied by an earlier taker
    size = whole.asks[1].sz + whole.asks[2].sz / 2
    expected = plan_take(whole.asks, taken, is_buy=True, limit_px=MID * 2, size=size)
    lazy = build_book(model, "BTC", MID, 5, 1, 2)
    got = plan_take(lazy.side(bids=False), taken, is_buy=True, limit_px=MID * 2, size=size)
    assert got == expected
    assert [t.level for t in got] == [1, 2]
