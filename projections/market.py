"""The crypto-prices view: the newest recorded price of every coin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from domain.trader import Trader
from projections.common import millis
from projections.documents import Price
from projections.engine import Decoded, Projector, ViewMeta


class MarketMeta(ViewMeta):
    pass


class MarketState(msgspec.Struct):
    prices: dict[str, Price] = {}
    view: MarketMeta = msgspec.field(name="_view", default_factory=lambda: MarketMeta(""))


class MarketProjector(Projector[MarketState]):
    name = "market"
    version = 1
    primary = "crypto-prices.json"
    state_type: ClassVar[type[Any]] = MarketState
    handles: ClassVar[frozenset[type[Any]] | None] = frozenset({Trader.DecisionRequested})
    ignores: ClassVar[Mapping[type[Any], frozenset[str]]] = {
        Trader.DecisionRequested: frozenset(
            {"snapshot", "user_prompt", "cycle_id", "prompt_template", "snapshot_digest"}
        )
    }

    def initial(self) -> MarketState:
        return MarketState(view=MarketMeta(self.view_name))

    def meta(self, state: MarketState) -> ViewMeta:
        return state.view

    def reduce(self, state: MarketState, kind: type[Any], event: Any) -> bool:
        if kind is not Trader.DecisionRequested:
            return False
        stamp = millis(event.as_of)
        changed = False
        for coin, price in event.marks.items():
            known = state.prices.get(coin)
            if known is None or stamp >= known.timestamp:
                state.prices[coin] = Price(symbol=coin, price=float(price), timestamp=stamp)
                changed = True
        return changed

    def reduce_batch(self, state: MarketState, events: Sequence[Decoded]) -> None:
        """As ``reduce`` one event after another, building each coin's price once."""
        newest: dict[str, tuple[int, Any]] = {}
        for _, kind, event in events:
            if kind is not Trader.DecisionRequested:
                continue
            stamp = millis(event.as_of)
            for coin, price in event.marks.items():
                known = newest.get(coin)
                if known is None:
                    held = state.prices.get(coin)
                    if held is not None and stamp < held.timestamp:
                        continue
                elif stamp < known[0]:
                    continue
                newest[coin] = (stamp, price)
        prices = state.prices
        for coin, (stamp, price) in newest.items():
            prices[coin] = Price(symbol=coin, price=float(price), timestamp=stamp)

    def cache_keys(self, state: MarketState) -> dict[str, bytes]:
        prices = {coin: p.price for coin, p in state.prices.items()}
        return {"market:prices": msgspec.json.encode(prices)}
