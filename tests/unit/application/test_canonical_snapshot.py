"""The canonical snapshot text is kept per snapshot object: the same object gives the same
text without encoding it again, and a new snapshot (even at a reused id) its own."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import msgspec

from application.cycle import canonical_snapshot
from application.ports import MarketSnapshot
from tests.support.fakes import T0, coin_snapshot


def direct(snapshot: MarketSnapshot) -> tuple[str, str]:
    text = msgspec.json.Encoder(decimal_format="string").encode(snapshot).decode()
    return text, hashlib.sha256(text.encode()).hexdigest()


def test_each_snapshot_gets_its_own_text_even_when_ids_are_reused() -> None:
    for minute in range(200):  # each snapshot dropped after use: CPython reuses the ids
        at = T0 + timedelta(minutes=minute)
        snapshot = MarketSnapshot(as_of=at, coins={"BTC": coin_snapshot("BTC", str(minute), at)})
        assert canonical_snapshot(snapshot) == direct(snapshot)
        assert canonical_snapshot(snapshot) == direct(snapshot)  # kept, and still right
