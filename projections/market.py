"""The crypto-prices view: the newest recorded price of every coin."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from domain.trader import Trader
from projections.common import millis
from projections.documents import Price
from projections.engine import Projector, ViewMeta


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

    def initial(self) -> MarketState:
        return MarketState(view=MarketMeta(self.view_name))

    def meta(self, state: MarketState) -> ViewMeta:
        return state.view

    def apply(self, state: MarketState, event: Any) -> bool:
        if type(event) is not Trader.DecisionRequested:
            return False
        stamp = millis(event.as_of)
        changed = False
        for coin, price in event.marks.items():
            known = state.prices.get(coin)
            if known is None or stamp >= known.timestamp:
                state.prices[coin] = Price(symbol=coin, price=float(price), timestamp=stamp)
                changed = True
        return changed

    def cache_keys(self, state: MarketState) -> dict[str, bytes]:
        prices = {coin: p.price for coin, p in state.prices.items()}
        return {"market:prices": msgspec.json.encode(prices)}
