"""Properties of the simulated venue (SimVenue).

* Prices and sizes: for every asset, a price the engine accepts has at most 5 significant
  figures (or is an integer) and at most ``6 − szDecimals`` decimals, and a size it accepts is
  positive with at most ``szDecimals`` decimals; ``domain.venue.round_price`` (what the
  traders use) always produces an accepted price.
* Ledger: over random sequences of orders (all time-in-forces, reduce-only, triggers),
  leverage and margin changes, price moves (liquidations included) and funding hours, the
  account value equals deposits + Σ closedPnl − Σ fees + Σ funding + Σ uPnL exactly; each
  position equals the signed sum of its fills; no reduce-only fill grows a position; fees are
  never negative.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.venue import round_price
from infrastructure.simulator.engine import (
    DEFAULT_UNIVERSE,
    BookModel,
    SimAsset,
    SimConfig,
    SimVenue,
)

D = Decimal
T0 = 1_790_000_000_000
HOUR = 3_600_000
USER = "0x" + "a1" * 20

# -- prices --------------------------------------------------------------------------------------

_probe = SimVenue.open(SimConfig(), None)


def engine_accepts(asset_id: int, px: Decimal) -> bool:
    """Whether an order at ``px`` gets past the price check: with a zero size, a valid price
    is refused for its size instead (and nothing changes in the venue)."""
    wire = {
        "a": asset_id,
        "b": True,
        "p": f"{px:f}",
        "s": "0",
        "r": False,
        "t": {"limit": {"tif": "Gtc"}},
    }
    response = _probe.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})
    error = response["response"]["data"]["statuses"][0]["error"]
    assert error in ("Order has invalid price.", "Order has invalid size.")
    return bool(error == "Order has invalid size.")


def figures_and_decimals(px: Decimal) -> tuple[int, int]:
    text = f"{px.normalize():f}"
    whole, _, fraction = text.partition(".")
    digits = (whole + fraction).lstrip("0")
    return len(digits), len(fraction)


prices_strategy = st.decimals(
    min_value=D("0.000001"), max_value=D("5000000"), allow_nan=False, allow_infinity=False
)


@given(asset_id=st.integers(0, len(DEFAULT_UNIVERSE) - 1), px=prices_strategy)
def test_an_accepted_price_obeys_the_figures_and_decimals_rule(asset_id: int, px: Decimal) -> None:
    asset = DEFAULT_UNIVERSE[asset_id]
    if engine_accepts(asset_id, px):
        figures, decimals = figures_and_decimals(px)
        assert px == px.to_integral_value() or (figures <= 5 and decimals <= 6 - asset.sz_decimals)


@given(
    asset_id=st.integers(0, len(DEFAULT_UNIVERSE) - 1),
    px=prices_strategy,
    up=st.sampled_from([None, True, False]),
)
def test_round_price_output_is_always_accepted(asset_id: int, px: Decimal, up: bool | None) -> None:
    rounded = round_price(px, DEFAULT_UNIVERSE[asset_id].sz_decimals, up=up)
    assert engine_accepts(asset_id, rounded)


@given(
    asset_id=st.integers(0, len(DEFAULT_UNIVERSE) - 1),
    sz=st.decimals(min_value=D("-1"), max_value=D("100000"), allow_nan=False, allow_infinity=False),
)
def test_an_accepted_size_is_positive_with_at_most_sz_decimals(asset_id: int, sz: Decimal) -> None:
    """An integer price is always valid, so the only possible refusal left is the size's (a
    valid size is then refused as reduce-only without a position: nothing trades)."""
    wire = {
        "a": asset_id,
        "b": True,
        "p": "1",
        "s": f"{sz:f}",
        "r": True,
        "t": {"limit": {"tif": "Ioc"}},
    }
    response = _probe.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})
    error = response["response"]["data"]["statuses"][0]["error"]
    if error != "Order has invalid size.":
        assert error.startswith("Reduce only order would increase position.")
        assert sz > 0
        assert figures_and_decimals(sz)[1] <= DEFAULT_UNIVERSE[asset_id].sz_decimals
    else:
        assert sz <= 0 or figures_and_decimals(sz)[1] > DEFAULT_UNIVERSE[asset_id].sz_decimals


# -- the ledger ----------------------------------------------------------------------------------

COINS = {"ETH": (1, 4), "SOL": (2, 2), "DOGE": (4, 0)}  # coin -> (asset id, szDecimals)
START = {"ETH": D(2000), "SOL": D(100), "DOGE": D("0.2")}
LOT_USD = {"ETH": D(60), "SOL": D(40), "DOGE": D(30)}
BOOK = BookModel(level_usd={"*": D(20_000)}, levels=8)


class Ledger(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 3))
    def start(self, seed: int) -> None:
        self.sim = SimVenue.open(SimConfig(book=BOOK, seed=seed), None)
        self.deposits = D(2_000)
        self.sim.fund(USER, self.deposits)
        self.now = T0
        self.mids = dict(START)
        self.sim.advance(self.now, self.mids)

    def _advance(self, step_ms: int, **feeds: Any) -> None:
        self.now += step_ms
        self.sim.advance(self.now, self.mids, **feeds)

    def _szi(self, coin: str) -> Decimal:
        state = self.sim.info({"type": "clearinghouseState", "user": USER})
        for row in state["assetPositions"]:
            if row["position"]["coin"] == coin:
                return D(row["position"]["szi"])
        return D(0)

    @rule(
        coin=st.sampled_from(sorted(COINS)),
        is_buy=st.booleans(),
        lots=st.integers(1, 60),
        tif=st.sampled_from(["Ioc", "Gtc", "Alo"]),
        reduce_only=st.booleans(),
        offset_bps=st.integers(-80, 80),
    )
    def order(
        self, coin: str, is_buy: bool, lots: int, tif: str, reduce_only: bool, offset_bps: int
    ) -> None:
        asset_id, sz_decimals = COINS[coin]
        px = round_price(self.mids[coin] * (1 + D(offset_bps) / 10_000), sz_decimals)
        size = (LOT_USD[coin] * lots / px).quantize(D(1).scaleb(-sz_decimals))
        if size <= 0:
            return
        before = self._szi(coin)
        wire = {
            "a": asset_id,
            "b": is_buy,
            "p": f"{px:f}",
            "s": f"{size:f}",
            "r": reduce_only,
            "t": {"limit": {"tif": tif}},
        }
        response = self.sim.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})
        assert response["status"] == "ok"
        after = self._szi(coin)
        if reduce_only:
            assert abs(after) <= abs(before)
            assert after == 0 or (after > 0) == (before > 0)

    @rule(
        coin=st.sampled_from(sorted(COINS)), is_buy=st.booleans(), times_equity=st.integers(2, 15)
    )
    def bet(self, coin: str, is_buy: bool, times_equity: int) -> None:
        """A large position, so that price moves can liquidate it."""
        asset_id, sz_decimals = COINS[coin]
        value = self.sim.account_value(USER)
        if value <= 0:
            return
        size = (value * times_equity / self.mids[coin]).quantize(D(1).scaleb(-sz_decimals))
        px = round_price(self.mids[coin] * (D("1.01") if is_buy else D("0.99")), sz_decimals)
        wire = {
            "a": asset_id,
            "b": is_buy,
            "p": f"{px:f}",
            "s": f"{size:f}",
            "r": False,
            "t": {"limit": {"tif": "Ioc"}},
        }
        assert (
            self.sim.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})["status"]
            == "ok"
        )

    @rule(
        coin=st.sampled_from(sorted(COINS)),
        take_profit=st.booleans(),
        distance_bps=st.integers(10, 300),
    )
    def protect(self, coin: str, take_profit: bool, distance_bps: int) -> None:
        szi = self._szi(coin)
        if szi == 0:
            return
        asset_id, sz_decimals = COINS[coin]
        closing_buy = szi < 0
        above = take_profit != closing_buy  # a long's TP and a short's SL sit above the mark
        factor = 1 + D(distance_bps if above else -distance_bps) / 10_000
        trigger_px = round_price(self.mids[coin] * factor, sz_decimals)
        worst = round_price(trigger_px * (D("1.1") if closing_buy else D("0.9")), sz_decimals)
        wire = {
            "a": asset_id,
            "b": closing_buy,
            "p": f"{worst:f}",
            "s": f"{abs(szi):f}",
            "r": True,
            "t": {
                "trigger": {
                    "isMarket": True,
                    "triggerPx": f"{trigger_px:f}",
                    "tpsl": "tp" if take_profit else "sl",
                }
            },
        }
        assert (
            self.sim.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})["status"]
            == "ok"
        )

    @rule(coin=st.sampled_from(sorted(COINS)), cross=st.booleans(), leverage=st.integers(1, 10))
    def set_leverage(self, coin: str, cross: bool, leverage: int) -> None:
        action = {
            "type": "updateLeverage",
            "asset": COINS[coin][0],
            "isCross": cross,
            "leverage": leverage,
        }
        self.sim.exchange(USER, action)

    @rule(coin=st.sampled_from(sorted(COINS)), dollars=st.integers(-200, 200))
    def move_margin(self, coin: str, dollars: int) -> None:
        action = {
            "type": "updateIsolatedMargin",
            "asset": COINS[coin][0],
            "isBuy": True,
            "ntli": dollars * 1_000_000,
        }
        self.sim.exchange(USER, action)

    @rule()
    def cancel_all(self) -> None:
        orders = self.sim.info({"type": "openOrders", "user": USER})
        cancels = [{"a": COINS[row["coin"]][0], "o": row["oid"]} for row in orders]
        if cancels:
            self.sim.exchange(USER, {"type": "cancel", "cancels": cancels})

    @rule(
        coin=st.sampled_from(sorted(COINS)),
        move_bps=st.integers(-3000, 3000),
        step_s=st.integers(1, 600),
    )
    def move(self, coin: str, move_bps: int, step_s: int) -> None:
        self.mids[coin] = round_price(self.mids[coin] * (1 + D(move_bps) / 10_000), COINS[coin][1])
        self._advance(step_s * 1000)

    @rule(rate_units=st.integers(-1000, 1000), hours=st.integers(1, 3))
    def funding(self, rate_units: int, hours: int) -> None:
        rates = {coin: D(rate_units).scaleb(-7) for coin in COINS}
        self._advance(hours * HOUR, funding_rates=rates)

    @invariant()
    def ledger_adds_up(self) -> None:
        fills = self.sim.info({"type": "userFills", "user": USER})
        funding = self.sim.info({"type": "userFunding", "user": USER, "startTime": 0})
        state = self.sim.info({"type": "clearinghouseState", "user": USER})
        closed = sum((D(f["closedPnl"]) for f in fills), D(0))
        fees = sum((D(f["fee"]) for f in fills), D(0))
        paid = sum((D(row["delta"]["usdc"]) for row in funding), D(0))
        unrealised = sum(
            (D(row["position"]["unrealizedPnl"]) for row in state["assetPositions"]), D(0)
        )
        assert self.sim.account_value(USER) == self.deposits + closed - fees + paid + unrealised
        assert D(state["marginSummary"]["accountValue"]) == self.sim.account_value(USER)

    @invariant()
    def positions_are_the_sum_of_fills(self) -> None:
        fills = self.sim.info({"type": "userFills", "user": USER})
        for coin in COINS:
            signed = sum(
                (
                    D(f["sz"]) if f["side"] == "B" else -D(f["sz"])
                    for f in fills
                    if f["coin"] == coin
                ),
                D(0),
            )
            assert self._szi(coin) == signed

    @invariant()
    def fees_are_not_negative_and_reduce_only_fills_reduce(self) -> None:
        for fill in self.sim.info({"type": "userFills", "user": USER}):
            assert D(fill["fee"]) >= 0
            start = D(fill["startPosition"])
            signed = D(fill["sz"]) if fill["side"] == "B" else -D(fill["sz"])
            order = self.sim.info({"type": "orderStatus", "user": USER, "oid": fill["oid"]})
            if order["order"]["order"]["reduceOnly"]:
                end = start + signed
                assert abs(end) <= abs(start)
                assert end == 0 or (end > 0) == (start > 0)


Ledger.TestCase.settings = settings(Ledger.TestCase.settings, stateful_step_count=25)
test_ledger = Ledger.TestCase


def test_the_ledger_machine_sees_isolated_positions_and_liquidations() -> None:
    """A fixed walk through the machine's rules that must liquidate an isolated position."""
    machine = Ledger()
    machine.start(seed=0)
    machine.set_leverage("SOL", cross=False, leverage=20)
    machine.order("SOL", True, 100, "Ioc", False, 80)
    assert machine._szi("SOL") > 0
    machine.ledger_adds_up()
    machine.move("SOL", -3000, 5)
    assert machine._szi("SOL") == 0
    liquidation = machine.sim.info({"type": "userFills", "user": USER})[0]
    assert liquidation["liquidation"]["method"] == "market"
    machine.ledger_adds_up()
    machine.positions_are_the_sum_of_fills()
    machine.fees_are_not_negative_and_reduce_only_fills_reduce()


def test_the_engine_rejects_what_the_rule_rejects_for_an_isolated_only_asset() -> None:
    sim = SimVenue.open(SimConfig(universe=(SimAsset("X", 3, 5, only_isolated=True),)), None)
    wire = {"a": 0, "b": True, "p": "12.3456", "s": "0", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    status = sim.exchange(USER, {"type": "order", "orders": [wire], "grouping": "na"})
    assert status["response"]["data"]["statuses"] == [{"error": "Order has invalid price."}]
