"""The Trader aggregate (ARCHITECTURE.md §3, §8): each command's exact events, stamped with
the time it was given, and the state they leave behind."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest

from domain.decision import ParsedDecision, parse_decision
from domain.ledger import EntryContext, ExitPlan, Position
from domain.risk import PlannedOrder, Rejection, close_order
from domain.trader import (
    PausePolicy,
    PendingOrder,
    PromptRecord,
    Trader,
    TraderError,
    make_cloid,
    trader_id,
)
from domain.values import (
    CloseReason,
    Liquidity,
    OrderIntent,
    OrderSide,
    SkipReason,
)
from tests.unit.domain.decision_corpus import COINS, btc_entry, dump

D = Decimal
T0 = datetime(2025, 10, 17, tzinfo=UTC)
MARKS = {"BTC": D(100000), "ETH": D(4000)}
PROMPT = PromptRecord(
    template="decision/user.j2",
    version="v1.0.0",
    digest="sha256:feed",
    schema_version="v1.0.0",
    user_prompt="It has been 3 minutes since you started trading.",
)
SLIPPAGE = D(50)
ALLOCATION = D(10000)
BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def register(config_id: str = "alpha", allocation: Decimal = ALLOCATION) -> Trader:
    return Trader.register(
        config_id=config_id,
        name=config_id.title(),
        model="model-a",
        allocation=allocation,
        coins=["BTC", "ETH"],
        at=T0,
    )


def names(events: list[Any]) -> list[str]:
    return [type(event).__name__ for event in events]


def payload(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if k not in BASE_FIELDS}


def ask(trader: Trader, minutes: float, marks: dict[str, Decimal] | None = None) -> str:
    return trader.request_decision(
        as_of=at(minutes),
        model=trader.model,
        snapshot='{"BTC": "100000"}',
        snapshot_digest="sha256:snap",
        marks=dict(marks or MARKS),
        prompt=PROMPT,
    )


def respond(
    trader: Trader, cycle_id: str, minutes: float, parsed: ParsedDecision | None = None
) -> None:
    trader.record_response(
        cycle_id=cycle_id,
        model=trader.model,
        raw_text="{}",
        parsed=parsed or ParsedDecision(items=()),
        tokens_in=1200,
        tokens_out=300,
        cost_usd=D("0.0042"),
        latency_ms=850,
        at=at(minutes),
    )


def fail(trader: Trader, cycle_id: str, minutes: float, policy: PausePolicy) -> None:
    trader.record_failure(
        cycle_id=cycle_id,
        model=trader.model,
        reason="invalid_json",
        detail="the JSON is truncated or malformed",
        raw_text='{"BTC": {',
        latency_ms=900,
        at=at(minutes),
        policy=policy,
    )


def entry_order(
    coin: str = "BTC",
    side: OrderSide = OrderSide.BUY,
    size: str = "0.1",
    *,
    price: str = "100000",
    stop: str = "95000",
    target: str = "110000",
) -> PlannedOrder:
    mark = D(price)
    factor = D(1) + (SLIPPAGE / 10000 if side is OrderSide.BUY else -SLIPPAGE / 10000)
    return PlannedOrder(
        coin=coin,
        side=side,
        size=D(size),
        intent=OrderIntent.OPEN_LONG if side is OrderSide.BUY else OrderIntent.OPEN_SHORT,
        reduce_only=False,
        leverage=5,
        limit_price=mark * factor,
        reason=None,
        context=EntryContext(
            leverage=5,
            exit_plan=ExitPlan(D(target), D(stop), "4h close below 94000"),
            confidence=D("0.7"),
            risk_usd=D(500),
            justification="breakout",
        ),
    )


def open_long(trader: Trader, *, fee: str = "4.5", minutes: float = 1) -> Position:
    """Place and fill a 0.1 BTC long at 100000."""
    cid = ask(trader, minutes)
    cloid = trader.place(
        cycle_id=cid,
        cloid=make_cloid(trader.id, cid, "0:BTC:open_long"),
        order=entry_order(),
        at=at(minutes),
    )
    trader.record_fill(
        cloid,
        price=D(100000),
        size=D("0.1"),
        fee=D(fee),
        liquidity=Liquidity.TAKER,
        at=at(minutes),
    )
    return trader.positions["BTC"]


# -- registration --------------------------------------------------------------------------------


def test_registration_gives_a_stable_id_and_a_clean_slate() -> None:
    trader = register()
    assert trader.id == trader_id("alpha") == uuid5(NAMESPACE_URL, "nof0/trader/alpha")
    assert trader_id("alpha") != trader_id("beta")
    assert Trader.create_id("alpha") == trader.id
    (event,) = trader.collect_events()
    assert type(event) is Trader.Registered
    assert event.timestamp == T0
    assert event.originator_id == trader.id
    assert payload(event) == {
        "config_id": "alpha",
        "name": "Alpha",
        "model": "model-a",
        "allocation": D(10000),
        "coins": ["BTC", "ETH"],
    }
    assert (trader.cycle_no, trader.last_cycle_at, trader.open_cycle) == (0, None, None)
    assert (trader.positions, trader.pending) == ({}, {})
    assert (trader.realized_pnl, trader.fees_paid, trader.funding) == (D(0), D(0), D(0))
    assert (trader.num_trades, trader.num_wins, trader.num_losses) == (0, 0, 0)
    assert (trader.paused, trader.pause_reason, trader.recent_outcomes) == (False, "", [])


def test_a_negative_allocation_is_refused() -> None:
    with pytest.raises(TraderError):
        register(allocation=D(-1))
    assert register(allocation=D(0)).allocation == D(0)


def history(config_id: str = "alpha") -> list[dict[str, Any]]:
    """One trader's life, with every kind of command."""
    policy = PausePolicy(window=4, min_cycles=2, max_failure_pct=D(50))
    trader = register(config_id)
    trader.allocate(D(12000), at(0.5))
    open_long(trader)
    cid = ask(trader, 3)
    respond(
        trader,
        cid,
        3.1,
        parse_decision(dump({"BTC": {"signal": "hold"}, "ETH": {"signal": "nope"}}), COINS),
    )
    trader.settle_funding(
        coin="BTC", amount=D("-1.25"), rate=D("0.0000125"), price=D(100000), at=at(4)
    )
    position = trader.positions["BTC"]
    order = close_order(position, D(105000), CloseReason.TARGET, SLIPPAGE)
    cloid = trader.place(
        cycle_id=cid, cloid=trader.exit_cloid(position, CloseReason.TARGET), order=order, at=at(5)
    )
    trader.record_fill(
        cloid, price=D(105000), size=D("0.1"), fee=D("4.725"), liquidity=Liquidity.TAKER, at=at(5)
    )
    trader.skip_cycle(reason=SkipReason.STALE_DATA, detail="BTC is 120 s old", as_of=at(6))
    for minute in (9, 12):
        fail(trader, ask(trader, minute), minute + 0.5, policy)
    trader.resume("operator", at(13))
    trader.switch_model("model-b", "fallback", at(14))
    rejected = trader.place(
        cycle_id="alpha#x", cloid="0x" + "ab" * 16, order=entry_order(), at=at(15)
    )
    trader.record_order_rejected(rejected, reason="margin", detail="not enough", at=at(15.5))
    return [vars(event) for event in trader.collect_events()]


def test_the_same_commands_give_equal_events() -> None:
    first, second = history(), history()
    assert first == second
    assert [e["originator_version"] for e in first] == list(range(1, len(first) + 1))


def test_every_command_emits_its_events_stamped_with_the_given_time() -> None:
    trader = register()
    trader.allocate(D(12000), at(0.5))
    open_long(trader)
    events = trader.collect_events()
    assert names(events) == [
        "Registered",
        "CapitalAllocated",
        "DecisionRequested",
        "OrderPlaced",
        "OrderFilled",
    ]
    assert [e.timestamp for e in events] == [T0, at(0.5), at(1), at(1), at(1)]
    full = history()
    assert full[0]["originator_topic"] == "nof0/Trader"
    assert [e["timestamp"] for e in full] == [
        T0,
        at(0.5),
        at(1),
        at(1),
        at(1),
        at(3),
        at(3.1),
        at(3.1),
        at(4),
        at(5),
        at(5),
        at(5),
        at(6),
        at(9),
        at(9.5),
        at(12),
        at(12.5),
        at(12.5),
        at(13),
        at(14),
        at(15),
        at(15.5),
    ]


def test_the_history_has_the_expected_event_types() -> None:
    policy = PausePolicy(window=4, min_cycles=2, max_failure_pct=D(50))
    trader = register()
    open_long(trader)
    trader.collect_events()
    cid = ask(trader, 3)
    fail(trader, cid, 3.5, policy)
    cid = ask(trader, 6)
    fail(trader, cid, 6.5, policy)
    assert names(trader.collect_events()) == [
        "DecisionRequested",
        "LLMFailed",
        "DecisionRequested",
        "LLMFailed",
        "Paused",
    ]


# -- decision cycles ------------------------------------------------------------------------------


def test_request_decision_numbers_cycles_and_records_the_inputs() -> None:
    trader = register()
    trader.collect_events()
    marks = {"BTC": D("100000.5")}
    assert ask(trader, 3, marks) == "alpha#1"
    marks["BTC"] = D(1)  # the caller's dict is copied, not kept
    assert ask(trader, 6) == "alpha#2"
    first, second = trader.collect_events()
    assert names([first, second]) == ["DecisionRequested", "DecisionRequested"]
    assert (first.timestamp, second.timestamp) == (at(3), at(6))
    assert payload(first) == {
        "cycle_id": "alpha#1",
        "cycle_no": 1,
        "as_of": at(3),
        "model": "model-a",
        "snapshot": '{"BTC": "100000"}',
        "snapshot_digest": "sha256:snap",
        "marks": {"BTC": D("100000.5")},
        "prompt_template": "decision/user.j2",
        "prompt_version": "v1.0.0",
        "prompt_digest": "sha256:feed",
        "schema_version": "v1.0.0",
        "user_prompt": "It has been 3 minutes since you started trading.",
    }
    assert (second.cycle_id, second.cycle_no) == ("alpha#2", 2)
    assert (trader.cycle_no, trader.last_cycle_at, trader.open_cycle) == (2, at(6), "alpha#2")


def test_a_paused_trader_asks_for_no_decision() -> None:
    trader = register()
    trader.pause("operator", "maintenance", at(1))
    trader.collect_events()
    with pytest.raises(TraderError, match="paused"):
        ask(trader, 3)
    assert trader.collect_events() == []
    assert trader.cycle_no == 0


def test_a_response_records_the_decision_and_one_rejection_per_refused_item() -> None:
    trader = register()
    cid = ask(trader, 3)
    trader.collect_events()
    raw = dump({"BTC": btc_entry(), "ETH": btc_entry(leverage=0), "PEPE": {"signal": "hold"}})
    parsed = parse_decision("<think>go</think>" + raw, COINS)
    trader.record_response(
        cycle_id=cid,
        model="model-a",
        raw_text=raw,
        parsed=parsed,
        tokens_in=1200,
        tokens_out=300,
        cost_usd=D("0.0042"),
        latency_ms=850,
        at=at(3.2),
    )
    events = trader.collect_events()
    assert names(events) == ["LLMResponded", "RiskRejected", "RiskRejected"]
    assert all(e.timestamp == at(3.2) for e in events)
    assert payload(events[0]) == {
        "cycle_id": "alpha#1",
        "model": "model-a",
        "raw_text": raw,
        "decisions": [parsed.items[0].to_record()],
        "cot_trace": "go",
        "tokens_in": 1200,
        "tokens_out": 300,
        "cost_usd": D("0.0042"),
        "latency_ms": 850,
        "cached": False,
    }
    assert events[0].decisions[0]["quantity"] == "0.1"  # records inside events are JSON-native
    assert [payload(e) for e in events[1:]] == [
        {
            "cycle_id": "alpha#1",
            "coin": "ETH",
            "signal": "",
            "rule": "decision_schema",
            "detail": f"out_of_range: {parsed.rejections[0].detail}",
            "values": {"field": "leverage", "error": "out_of_range"},
        },
        {
            "cycle_id": "alpha#1",
            "coin": "PEPE",
            "signal": "",
            "rule": "decision_schema",
            "detail": f"unknown_coin: {parsed.rejections[1].detail}",
            "values": {"field": "coin", "error": "unknown_coin"},
        },
    ]
    assert trader.open_cycle is None
    assert trader.recent_outcomes == [0]


def test_a_risk_rejection_is_journalled_as_is() -> None:
    trader = register()
    trader.collect_events()
    rejection = Rejection(
        coin="BTC",
        signal="buy_to_enter",
        rule="leverage_cap",
        detail="too much",
        values={"leverage": "50", "config_cap": "20", "venue_cap": "40"},
    )
    trader.reject("alpha#1", rejection, at(3))
    (event,) = trader.collect_events()
    assert type(event) is Trader.RiskRejected
    assert event.timestamp == at(3)
    assert payload(event) == {
        "cycle_id": "alpha#1",
        "coin": "BTC",
        "signal": "buy_to_enter",
        "rule": "leverage_cap",
        "detail": "too much",
        "values": {"leverage": "50", "config_cap": "20", "venue_cap": "40"},
    }


# -- pausing on failures --------------------------------------------------------------------------


def run(trader: Trader, outcomes: str, policy: PausePolicy, start: int = 0) -> list[list[str]]:
    """Run one cycle per letter (S: answered, F: failed); the events of each cycle."""
    per_cycle = []
    for offset, outcome in enumerate(outcomes):
        minute = 3 * (start + offset + 1)
        cid = ask(trader, minute)
        trader.collect_events()
        if outcome == "F":
            fail(trader, cid, minute + 1, policy)
        else:
            respond(trader, cid, minute + 1)
        per_cycle.append(names(trader.collect_events()))
    return per_cycle


def test_failures_before_min_cycles_do_not_pause() -> None:
    trader = register()
    policy = PausePolicy()  # more than 10 % of the last 20, once 10 have run
    assert run(trader, "F" * 9, policy) == [["LLMFailed"]] * 9
    assert trader.paused is False
    assert run(trader, "F", policy, start=9) == [["LLMFailed", "Paused"]]
    assert trader.paused is True
    assert trader.pause_reason == "failure_rate: 10 of the last 10 cycles failed (limit 10%)"


def test_exactly_the_limit_does_not_pause_and_one_more_does() -> None:
    trader = register()
    policy = PausePolicy()
    assert run(trader, "SSSSSSSSSF", policy)[-1] == ["LLMFailed"]  # 1 of 10 = 10 %
    assert trader.paused is False
    assert run(trader, "F", policy, start=10) == [["LLMFailed", "Paused"]]  # 2 of 11
    assert trader.pause_reason == "failure_rate: 2 of the last 11 cycles failed (limit 10%)"


def test_only_the_last_window_counts() -> None:
    trader = register()
    policy = PausePolicy()
    run(trader, "FF", policy)
    run(trader, "S" * 18, policy, start=2)
    # The first early failure drops out of the window: 2 of the last 20 = 10 %.
    assert run(trader, "F", policy, start=20) == [["LLMFailed"]]
    # The second drops out too: still 2 of 20.
    assert run(trader, "F", policy, start=21) == [["LLMFailed"]]
    assert run(trader, "F", policy, start=22) == [["LLMFailed", "Paused"]]  # 3 of 20
    assert trader.pause_reason == "failure_rate: 3 of the last 20 cycles failed (limit 10%)"


def test_a_custom_policy() -> None:
    trader = register()
    policy = PausePolicy(window=5, min_cycles=5, max_failure_pct=D(40))
    assert run(trader, "SSSFF", policy)[-1] == ["LLMFailed"]  # 2 of 5 = 40 %
    assert run(trader, "F", policy, start=5) == [["LLMFailed", "Paused"]]  # 3 of 5
    assert trader.pause_reason == "failure_rate: 3 of the last 5 cycles failed (limit 40%)"


def test_a_paused_trader_is_not_paused_twice_and_resuming_forgets_the_failures() -> None:
    trader = register()
    policy = PausePolicy(window=4, min_cycles=2, max_failure_pct=D(50))
    assert run(trader, "FF", policy)[-1] == ["LLMFailed", "Paused"]
    # A late failure of an already-requested cycle while paused: no second Paused.
    fail(trader, "alpha#2", 10, policy)
    assert names(trader.collect_events()) == ["LLMFailed"]
    trader.resume("operator", at(11))
    assert names(trader.collect_events()) == ["Resumed"]
    assert trader.recent_outcomes == []
    assert run(trader, "F", policy, start=4) == [["LLMFailed"]]  # 1 of 1: below min_cycles


def test_a_window_longer_than_twenty_cycles_still_pauses() -> None:
    """The configuration allows ``pause_failure_window`` up to 1000 with
    ``min_cycles = window // 2``; a trader failing every cycle must still be paused."""
    trader = register()
    policy = PausePolicy(window=40, min_cycles=20, max_failure_pct=D(10))
    run(trader, "F" * 19, policy)
    assert trader.paused is False
    assert run(trader, "F", policy, start=19) == [["LLMFailed", "Paused"]]
    trader = register("beta")
    policy = PausePolicy(window=50, min_cycles=25, max_failure_pct=D(10))
    events = run(trader, "F" * 25, policy)
    assert events[:24] == [["LLMFailed"]] * 24
    assert events[24] == ["LLMFailed", "Paused"]
    with pytest.raises(TraderError, match="paused"):
        run(trader, "F", policy, start=25)


# -- orders and fills ------------------------------------------------------------------------------


def test_place_records_the_order_and_refuses_a_pending_duplicate() -> None:
    trader = register()
    cid = ask(trader, 1)
    trader.collect_events()
    cloid = make_cloid(trader.id, cid, "0:BTC:open_long")
    assert trader.place(cycle_id=cid, cloid=cloid, order=entry_order(), at=at(1)) == cloid
    (event,) = trader.collect_events()
    assert type(event) is Trader.OrderPlaced
    assert event.timestamp == at(1)
    assert payload(event) == {
        "cycle_id": "alpha#1",
        "cloid": cloid,
        "coin": "BTC",
        "side": "buy",
        "size": D("0.1"),
        "intent": "open_long",
        "reduce_only": False,
        "leverage": 5,
        "limit_price": D(100500),
        "reason": None,
        "exit_plan": {
            "profit_target": "110000",
            "stop_loss": "95000",
            "invalidation_condition": "4h close below 94000",
        },
        "confidence": D("0.7"),
        "risk_usd": D(500),
        "justification": "breakout",
    }
    assert trader.pending == {
        cloid: PendingOrder(
            cloid=cloid,
            cycle_id="alpha#1",
            coin="BTC",
            side=OrderSide.BUY,
            size=D("0.1"),
            intent=OrderIntent.OPEN_LONG,
            reduce_only=False,
            leverage=5,
            limit_price=D(100500),
            reason=None,
            context=entry_order().context,
            placed_at=at(1),
        )
    }
    with pytest.raises(TraderError, match="already pending"):
        trader.place(cycle_id=cid, cloid=cloid, order=entry_order(size="0.2"), at=at(2))
    assert trader.collect_events() == []
    assert trader.pending[cloid].size == D("0.1")


def test_an_opening_fill_opens_the_position_and_clears_the_order() -> None:
    trader = register()
    position = open_long(trader)
    events = trader.collect_events()
    assert names(events)[-1] == "OrderFilled"
    assert payload(events[-1]) == {
        "cloid": position.entry_cloid,
        "coin": "BTC",
        "side": "buy",
        "size": D("0.1"),
        "price": D(100000),
        "fee": D("4.5"),
        "liquidity": "taker",
        "final": True,
        "fill_id": "",
        "oid": None,
    }
    assert position == Position(
        coin="BTC",
        qty=D("0.1"),
        entry_price=D(100000),
        opened_at=at(1),
        entry_cloid=position.entry_cloid,
        context=entry_order().context,
        entry_fees=D("4.5"),
        peak_qty=D("0.1"),
    )
    assert trader.pending == {}
    assert (trader.fees_paid, trader.realized_pnl) == (D("4.5"), D(0))


def test_partial_fills_keep_the_order_pending_until_complete() -> None:
    trader = register()
    cid = ask(trader, 1)
    cloid = trader.place(cycle_id=cid, cloid="0x01", order=entry_order(size="0.3"), at=at(1))
    trader.record_fill(
        cloid,
        price=D(100000),
        size=D("0.1"),
        fee=D(1),
        liquidity=Liquidity.MAKER,
        at=at(1),
        final=False,
    )
    assert trader.pending[cloid].filled == D("0.1")
    trader.record_fill(
        cloid,
        price=D(100300),
        size=D("0.2"),
        fee=D(2),
        liquidity=Liquidity.TAKER,
        at=at(2),
        final=False,
    )
    assert trader.pending == {}  # filled in full
    assert trader.positions["BTC"].qty == D("0.3")
    assert trader.positions["BTC"].entry_price == D(100200)
    cloid2 = trader.place(cycle_id=cid, cloid="0x02", order=entry_order("ETH", size="1"), at=at(3))
    trader.record_fill(
        cloid2,
        price=D(4000),
        size=D("0.4"),
        fee=D(1),
        liquidity=Liquidity.TAKER,
        at=at(3),
        final=True,
    )
    assert cloid2 not in trader.pending  # the venue says no more will come
    assert trader.positions["ETH"].qty == D("0.4")
    assert names(trader.collect_events()).count("PositionClosed") == 0


@pytest.mark.parametrize(
    ("reason", "exit_price", "exit_fee", "gross", "net", "win"),
    [
        (CloseReason.SIGNAL, "105000", "4.725", "500", "489.525", True),
        (CloseReason.TARGET, "110000", "4.95", "1000", "989.3", True),
        (CloseReason.STOP, "95000", "4.275", "-500", "-510.025", False),
    ],
)
def test_a_closing_fill_closes_the_trade_with_the_orders_reason(
    reason: CloseReason, exit_price: str, exit_fee: str, gross: str, net: str, win: bool
) -> None:
    trader = register()
    position = open_long(trader)
    trader.settle_funding(
        coin="BTC", amount=D("-1.25"), rate=D("0.0000125"), price=D(100000), at=at(2)
    )
    position = trader.positions["BTC"]
    cloid = trader.exit_cloid(position, reason)
    order = close_order(position, D(exit_price), reason, SLIPPAGE)
    trader.place(cycle_id="alpha#1", cloid=cloid, order=order, at=at(3))
    trader.collect_events()
    trader.record_fill(
        cloid,
        price=D(exit_price),
        size=D("0.1"),
        fee=D(exit_fee),
        liquidity=Liquidity.TAKER,
        at=at(4),
    )
    events = trader.collect_events()
    assert names(events) == ["OrderFilled", "PositionClosed"]
    assert [e.timestamp for e in events] == [at(4), at(4)]
    closed = payload(events[1])
    assert closed == {
        "coin": "BTC",
        "reason": reason.value,
        "side": "long",
        "size": D("0.1"),
        "entry_price": D(100000),
        "exit_price": D(exit_price),
        "opened_at": at(1),
        "closed_at": at(4),
        "leverage": 5,
        "gross_pnl": D(gross),
        "entry_fees": D("4.5"),
        "exit_fees": D(exit_fee),
        "funding": D("-1.25"),
        "net_pnl": D(net),
        "entry_cloid": position.entry_cloid,
        "exit_cloid": cloid,
        "confidence": D("0.7"),
        "exit_plan": entry_order().context.exit_plan.to_record(),  # type: ignore[union-attr]
    }
    assert closed["net_pnl"] == D(gross) - D("4.5") - D(exit_fee) + D("-1.25")
    assert trader.positions == {}
    assert trader.pending == {}
    assert (trader.num_trades, trader.num_wins, trader.num_losses) == (1, int(win), int(not win))
    assert trader.realized_pnl == D(gross)
    assert trader.fees_paid == D("4.5") + D(exit_fee)
    assert trader.funding == D("-1.25")


def test_a_stated_reason_wins_and_a_venue_fill_without_an_order_is_external() -> None:
    trader = register()
    position = open_long(trader)
    trader.collect_events()
    trader.record_fill(
        "0xliq",
        price=D(81000),
        size=D("0.1"),
        fee=D(0),
        liquidity=Liquidity.TAKER,
        at=at(2),
        coin="BTC",
        side=OrderSide.SELL,
        reason=CloseReason.LIQUIDATION,
    )
    events = trader.collect_events()
    assert names(events) == ["OrderFilled", "PositionClosed"]
    assert (events[1].reason, events[1].exit_cloid, events[1].net_pnl) == (
        "liquidation",
        "0xliq",
        D("-1904.5"),
    )
    assert events[1].entry_cloid == position.entry_cloid
    trader = register("beta")
    open_long(trader)
    trader.collect_events()
    trader.record_fill(
        "0xmanual",
        price=D(100000),
        size=D("0.1"),
        fee=D("4.5"),
        liquidity=Liquidity.TAKER,
        at=at(2),
        coin="BTC",
        side=OrderSide.SELL,
    )
    events = trader.collect_events()
    assert [e.reason for e in events[1:]] == ["external"]
    assert events[1].net_pnl == D(-9)
    assert (trader.num_trades, trader.num_losses) == (1, 1)  # a zero-gross trade lost its fees


def test_a_fill_of_an_unknown_order_needs_coin_and_side() -> None:
    trader = register()
    trader.collect_events()
    with pytest.raises(TraderError, match="no pending order"):
        trader.record_fill(
            "0xnope", price=D(1), size=D(1), fee=D(0), liquidity=Liquidity.TAKER, at=at(1)
        )
    with pytest.raises(TraderError):
        trader.record_fill(
            "0xnope",
            price=D(1),
            size=D(1),
            fee=D(0),
            liquidity=Liquidity.TAKER,
            at=at(1),
            coin="BTC",
        )
    assert trader.collect_events() == []


def test_a_partial_close_is_not_a_closed_trade() -> None:
    trader = register()
    position = open_long(trader)
    order = close_order(position, D(101000), CloseReason.SIGNAL, SLIPPAGE)
    cloid = trader.place(cycle_id="alpha#1", cloid="0xclose", order=order, at=at(2))
    trader.collect_events()
    trader.record_fill(
        cloid,
        price=D(101000),
        size=D("0.04"),
        fee=D(1),
        liquidity=Liquidity.TAKER,
        at=at(2),
        final=False,
    )
    assert names(trader.collect_events()) == ["OrderFilled"]
    assert trader.positions["BTC"].qty == D("0.06")
    assert trader.realized_pnl == D(40)
    assert trader.pending["0xclose"].filled == D("0.04")
    trader.record_fill(
        cloid, price=D(99000), size=D("0.06"), fee=D(1), liquidity=Liquidity.TAKER, at=at(3)
    )
    events = trader.collect_events()
    assert names(events) == ["OrderFilled", "PositionClosed"]
    assert (events[1].gross_pnl, events[1].exit_price, events[1].size) == (
        D(-20),
        D(99800),
        D("0.1"),
    )
    assert events[1].net_pnl == D("-26.5")  # −20 − (4.5 + 1 + 1)


def test_a_fill_through_zero_closes_and_opens_the_other_way() -> None:
    trader = register()
    open_long(trader)
    cloid = trader.place(
        cycle_id="alpha#2",
        cloid="0xflip",
        order=entry_order(side=OrderSide.SELL, size="0.3", stop="105000", target="90000"),
        at=at(2),
    )
    trader.collect_events()
    trader.record_fill(
        cloid, price=D(99000), size=D("0.3"), fee=D(3), liquidity=Liquidity.TAKER, at=at(2)
    )
    events = trader.collect_events()
    assert names(events) == ["OrderFilled", "PositionClosed"]
    assert events[1].reason == "external"
    assert (events[1].gross_pnl, events[1].exit_fees, events[1].net_pnl) == (
        D(-100),
        D(1),
        D("-105.5"),
    )
    short = trader.positions["BTC"]
    assert (short.qty, short.entry_price, short.entry_cloid, short.entry_fees) == (
        D("-0.2"),
        D(99000),
        "0xflip",
        D(2),
    )
    assert short.context.exit_plan == ExitPlan(D(90000), D(105000), "4h close below 94000")


def test_an_order_rejection_clears_the_pending_order() -> None:
    trader = register()
    cloid = trader.place(cycle_id="alpha#1", cloid="0x01", order=entry_order(), at=at(1))
    trader.collect_events()
    trader.record_order_rejected(cloid, reason="insufficient_margin", detail="venue", at=at(2))
    (event,) = trader.collect_events()
    assert type(event) is Trader.OrderRejected
    assert event.timestamp == at(2)
    assert payload(event) == {
        "cloid": "0x01",
        "coin": "BTC",
        "reason": "insufficient_margin",
        "detail": "venue",
    }
    assert trader.pending == {}
    with pytest.raises(TraderError, match="no pending order"):
        trader.record_order_rejected(cloid, reason="again", detail="", at=at(3))
    assert trader.collect_events() == []


def test_funding_accrues_to_the_trader_and_the_open_position() -> None:
    trader = register()
    open_long(trader)
    trader.collect_events()
    trader.settle_funding(
        coin="BTC", amount=D("-1.25"), rate=D("0.0000125"), price=D(100000), at=at(60)
    )
    trader.settle_funding(coin="ETH", amount=D("0.5"), rate=D("-0.00001"), price=D(4000), at=at(60))
    events = trader.collect_events()
    assert names(events) == ["FundingSettled", "FundingSettled"]
    assert payload(events[0]) == {
        "coin": "BTC",
        "amount": D("-1.25"),
        "rate": D("0.0000125"),
        "price": D(100000),
        "funding_id": "",
    }
    assert trader.funding == D("-0.75")
    assert trader.positions["BTC"].funding == D("-1.25")
    assert "ETH" not in trader.positions
    account = trader.account({"BTC": D(101000)})
    assert account.equity == D(10000) + D(100) - D("4.5") - D("0.75")


# -- other commands -------------------------------------------------------------------------------


def test_skip_cycle_keeps_the_cycle_number() -> None:
    trader = register()
    ask(trader, 3)
    trader.collect_events()
    trader.skip_cycle(reason=SkipReason.BUDGET, detail="daily budget spent", as_of=at(6))
    (event,) = trader.collect_events()
    assert type(event) is Trader.CycleSkipped
    assert event.timestamp == at(6)
    assert payload(event) == {
        "cycle_no": 1,
        "as_of": at(6),
        "reason": "budget",
        "detail": "daily budget spent",
    }
    assert (trader.cycle_no, trader.last_cycle_at) == (1, at(6))


def test_pause_and_resume_are_idempotent() -> None:
    trader = register()
    trader.collect_events()
    trader.resume("nothing to resume", at(1))
    assert trader.collect_events() == []
    trader.pause("operator", "maintenance", at(2))
    trader.pause("operator", "again", at(3))
    (paused,) = trader.collect_events()
    assert type(paused) is Trader.Paused
    assert (paused.timestamp, paused.reason, paused.detail) == (at(2), "operator", "maintenance")
    assert (trader.paused, trader.pause_reason) == (True, "operator: maintenance")
    trader.resume("operator", at(4))
    trader.resume("operator", at(5))
    (resumed,) = trader.collect_events()
    assert type(resumed) is Trader.Resumed
    assert (resumed.timestamp, resumed.reason) == (at(4), "operator")
    assert (trader.paused, trader.pause_reason) == (False, "")
    trader.pause("budget", "", at(6))
    assert trader.pause_reason == "budget"


def test_switch_model_only_when_it_changes() -> None:
    trader = register()
    trader.collect_events()
    trader.switch_model("model-a", "same", at(1))
    assert trader.collect_events() == []
    trader.switch_model("model-b", "primary timed out", at(2))
    (event,) = trader.collect_events()
    assert type(event) is Trader.ModelSwitched
    assert event.timestamp == at(2)
    assert payload(event) == {
        "from_model": "model-a",
        "to_model": "model-b",
        "reason": "primary timed out",
    }
    assert trader.model == "model-b"


def test_allocate_only_when_it_changes() -> None:
    trader = register()
    trader.collect_events()
    trader.allocate(D("10000.00"), at(1))
    assert trader.collect_events() == []
    trader.allocate(D(15000), at(2))
    (event,) = trader.collect_events()
    assert type(event) is Trader.CapitalAllocated
    assert event.timestamp == at(2)
    assert payload(event) == {"allocation": D(15000), "previous": D(10000)}
    assert trader.allocation == D(15000)
    assert trader.account({}).equity == D(15000)


def test_make_cloid_is_deterministic_hex() -> None:
    tid = trader_id("alpha")
    cloid = make_cloid(tid, "alpha#1", "0:BTC:open_long")
    assert re.fullmatch(r"0x[0-9a-f]{32}", cloid)
    assert cloid == make_cloid(trader_id("alpha"), "alpha#1", "0:BTC:open_long")
    others = {
        make_cloid(tid, "alpha#1", "1:BTC:open_long"),
        make_cloid(tid, "alpha#2", "0:BTC:open_long"),
        make_cloid(trader_id("beta"), "alpha#1", "0:BTC:open_long"),
    }
    assert cloid not in others
    assert len(others) == 3


def test_exit_cloid_is_one_id_per_position_and_reason() -> None:
    trader = register()
    position = open_long(trader)
    stop = trader.exit_cloid(position, CloseReason.STOP)
    assert stop == trader.exit_cloid(trader.positions["BTC"], CloseReason.STOP)
    assert stop == make_cloid(trader.id, f"exit:{position.entry_cloid}", "stop")
    assert stop != trader.exit_cloid(position, CloseReason.TARGET)
    assert re.fullmatch(r"0x[0-9a-f]{32}", stop)
