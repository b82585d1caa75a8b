"""Which of an account's traders holds each coin, kept in step with the event store.

Every cycle asks which coins the other traders on its account hold (``coin_held_by_other``).
Answering it by reading every trader made each cycle O(traders) and each tick O(traders²):
a quarter of a millisecond per cycle at 100 traders. The index keeps coin → holders and
changes one trader's entry when the application saves that trader; it is rebuilt from the
store whenever the application cannot vouch for its working copies (another writer was
seen at a look at the log's head, or a save failed with an unknown outcome). So it answers
what a scan of the stored traders would: the first holder of each coin in the account's
order of traders (``holders``).
"""

from __future__ import annotations

from collections.abc import Sequence

from application.trading import TradingApp
from application.venue_state import held_coins
from domain.trader import Trader


class ClaimedCoins:
    def __init__(self, app: TradingApp, config_ids: Sequence[str]) -> None:
        self.app = app
        self.config_ids = list(config_ids)
        self._rank = {c: i for i, c in enumerate(self.config_ids)}
        self._coins: dict[str, frozenset[str]] = {}  # trader → the coins it holds
        self._holders: dict[str, set[str]] = {}  # coin → the traders holding it
        self._built = False
        self.rebuilds = 0  # how often the index was read again from the store (tests)
        app.watch(self)

    # -- told by the application -------------------------------------------------------------

    def saved(self, aggregate: object) -> None:
        """``aggregate`` was saved: its holdings are what the store holds now."""
        if not self._built or not isinstance(aggregate, Trader):
            return
        if aggregate.config_id in self._rank:
            self._set(aggregate.config_id, frozenset(held_coins(aggregate)))

    def reset(self) -> None:
        """The store may hold what this process has not seen: read it again when asked."""
        self._built = False

    # -- asked by the cycle ------------------------------------------------------------------

    def holders(self, excluding: str | None = None) -> dict[str, str]:
        """coin → its first holder in the account's order, ``excluding`` left out; the same
        as ``venue_state.holders`` over the stored traders but ``excluding``."""
        self.app.look()  # another writer seen: reset() and read again below
        if not self._built:
            self._build()
        rank = self._rank
        result: list[tuple[int, str, str]] = []
        for coin, who in self._holders.items():
            first = min((h for h in who if h != excluding), key=rank.__getitem__, default=None)
            if first is not None:
                result.append((rank[first], coin, first))
        # In the scan's order too: by holder, then coin (sorted, as held_coins gives them).
        return {coin: holder for _, coin, holder in sorted(result)}

    # -- inside ----------------------------------------------------------------------------

    def _build(self) -> None:
        self._coins = {}
        self._holders = {}
        for trader in self.app.find_traders(self.config_ids):
            self._set(trader.config_id, frozenset(held_coins(trader)))
        self._built = True
        self.rebuilds += 1

    def _set(self, config_id: str, coins: frozenset[str]) -> None:
        before = self._coins.get(config_id, frozenset())
        if coins == before:
            return
        for coin in before - coins:
            who = self._holders[coin]
            who.discard(config_id)
            if not who:
                del self._holders[coin]
        for coin in coins - before:
            self._holders.setdefault(coin, set()).add(config_id)
        self._coins[config_id] = coins
