"""The built-in baseline models answer the decision contract, deterministically, and their
answers pass the parser and the risk desk with the shipped limits (etc/manager.yaml)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from application.ports import (
    AccountView,
    CoinSnapshot,
    DecisionReply,
    DecisionRequest,
    MarketSnapshot,
    PositionView,
    RenderedPrompt,
)
from application.settings import TraderSettings
from domain.decision import ENTRY_FIELDS, parse_decision
from domain.ledger import AccountSnapshot, EntryContext, ExitPlan, Position, value_account
from domain.risk import OrderPlan, plan_orders
from domain.values import OrderIntent, OrderSide, Signal
from infrastructure import bootstrap
from infrastructure.hyperliquid.assets import HYPERLIQUID_ASSETS
from infrastructure.models.baseline import BaselineModel
from tests.support.fakes import coin_snapshot

TAKER_FEE = Decimal("0.00045")

D = Decimal
AT = datetime(2025, 10, 17, 12, 0, tzinfo=UTC)
ALL = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
PRICES = {
    "BTC": D(107000),
    "ETH": D(3900),
    "SOL": D("190.5"),
    "BNB": D(1100),
    "DOGE": D("0.19"),
    "XRP": D("2.4"),
}


@pytest.fixture(scope="module")
def shipped(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TraderSettings]:
    config = bootstrap.load_config(
        repo_root / "etc" / "nof0.yaml", env={}, data_dir=tmp_path_factory.mktemp("data")
    )
    settings = {t.id: bootstrap.trader_settings(config, t) for t in config.manager.traders}
    assert {s.model for s in settings.values()} == {
        "baseline:ema_cross",
        "baseline:random",
        "baseline:btc_hold",
    }
    return settings


@pytest.fixture(scope="module")
def schema(repo_root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (repo_root / "prompts" / "decision" / "decision.schema.json").read_text(encoding="utf-8")
    )
    return loaded


def trend(coin: str, kind: str) -> CoinSnapshot:
    """``up``/``down``: 3m and 4h trends agree; ``turned_*``: the 3m trend turned, the 4h
    did not; ``flat``: the fake's neutral snapshot."""
    snap = coin_snapshot(coin, PRICES[coin], AT)
    p = float(PRICES[coin])
    lt = snap.long_term
    if kind == "flat":
        return snap
    up_3m = kind in ("up", "turned_up")
    up_4h = kind in ("up", "turned_down")
    return msgspec.structs.replace(
        snap,
        ema20=p * (0.99 if up_3m else 1.01),
        macd=p * (0.001 if up_3m else -0.001),
        long_term=msgspec.structs.replace(
            lt,
            ema20=p * (0.98 if up_4h else 1.02),
            ema50=p * (0.95 if up_4h else 1.05),
        ),
    )


def make_position(coin: str, qty: str, entry: str, leverage: int = 5) -> Position:
    return Position(
        coin=coin,
        qty=D(qty),
        entry_price=D(entry),
        opened_at=AT,
        entry_cloid="0x1",
        context=EntryContext(
            leverage=leverage,
            exit_plan=ExitPlan(D(1), D(10**9), "never"),
            confidence=D("0.8"),
            risk_usd=D(10),
            justification="test",
        ),
    )


def view(position: Position, mark: Decimal) -> PositionView:
    assert position.context.exit_plan is not None
    return PositionView(
        coin=position.coin,
        quantity=position.qty,
        entry_price=position.entry_price,
        current_price=mark,
        liquidation_price=None,
        unrealized_pnl=position.unrealized(mark),
        leverage=position.context.leverage,
        profit_target=position.context.exit_plan.profit_target,
        stop_loss=position.context.exit_plan.stop_loss,
        invalidation_condition=position.context.exit_plan.invalidation_condition,
        confidence=position.context.confidence,
        risk_usd=position.context.risk_usd,
        justification=position.context.justification,
        notional_usd=position.notional(mark),
    )


def make_request(
    settings: TraderSettings,
    trends: Mapping[str, str],
    *,
    positions: Mapping[str, Position] | None = None,
    cycle_id: str = "c-1",
    trader: str | None = None,
) -> tuple[DecisionRequest, AccountSnapshot]:
    coins = settings.coins
    snapshot = MarketSnapshot(as_of=AT, coins={c: trend(c, trends.get(c, "flat")) for c in coins})
    marks = snapshot.marks()
    held = dict(positions or {})
    account = value_account(
        allocation=settings.allocation,
        realized_pnl=D(0),
        fees_paid=D(0),
        funding=D(0),
        positions=held,
        marks=marks,
    )
    request = DecisionRequest(
        trader=trader or settings.config_id,
        cycle_id=cycle_id,
        as_of=AT,
        coins=coins,
        snapshot=snapshot,
        account=AccountView(
            equity=account.equity,
            available_cash=account.available,
            return_pct=account.return_pct,
            sharpe_ratio=0.0,
            positions=tuple(view(p, marks[c]) for c, p in held.items()),
            minutes_elapsed=30,
            invocations=10,
        ),
        prompt=RenderedPrompt("t", "v1.0.0", "v1.0.0", "system", "user", "0" * 64),
        model=settings.model,
    )
    return request, account


def decide(settings: TraderSettings, request: DecisionRequest) -> DecisionReply:
    model = BaselineModel(
        settings.model, max_position_size_usd=settings.limits.max_position_size_usd
    )
    reply = asyncio.run(model.decide(request))
    assert reply.model == settings.model
    assert reply.cost_usd == 0
    return reply


def check_contract(
    text: str, request: DecisionRequest, schema: Mapping[str, Any]
) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(text)
    jsonschema.validate(answer, schema)
    assert set(answer) <= set(request.coins)
    for coin, item in answer.items():
        if item["signal"] in ("buy_to_enter", "sell_to_enter"):
            assert set(ENTRY_FIELDS) <= set(item), coin
    return answer


def plan(
    settings: TraderSettings, request: DecisionRequest, account: AccountSnapshot, text: str
) -> OrderPlan:
    parsed = parse_decision(text, request.coins)
    assert parsed.rejections == ()
    return plan_orders(
        parsed.items,
        account=account,
        marks=request.snapshot.marks(),
        limits=settings.limits,
        assets=HYPERLIQUID_ASSETS,
        slippage_bps=settings.slippage_bps,
        taker_fee_rate=TAKER_FEE,
    )


# -- ema_cross ------------------------------------------------------------------------------


def test_ema_cross_enters_with_the_trend_and_passes_the_risk_desk(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["ema-cross"]
    assert settings.limits.max_position_size_usd == D(2000)
    trends = {"BTC": "up", "ETH": "down", "SOL": "turned_up", "DOGE": "flat"}
    request, account = make_request(settings, trends)
    answer = check_contract(decide(settings, request).text, request, schema)
    assert set(answer) == set(ALL)
    assert answer["BTC"]["signal"] == "buy_to_enter"
    assert answer["ETH"]["signal"] == "sell_to_enter"
    assert all(answer[c]["signal"] == "hold" for c in ("SOL", "BNB", "DOGE", "XRP"))
    btc = answer["BTC"]
    # equity 3000 risks 1.5 % = 45 at a 0.6 % stop → 7500, capped at 0.95 × 2000 = 1900.
    assert btc["quantity"] == 0.01775  # 1900 / 107000 rounded down to 5 decimals
    assert btc["stop_loss"] == 106358.0  # 107000 − 642
    assert btc["profit_target"] == 109054.0  # 107000 + 3.2 × 642, at 6 significant figures
    assert btc["leverage"] == 5
    assert btc["confidence"] == 0.8
    assert btc["risk_usd"] == 45.0
    eth = answer["ETH"]
    assert eth["stop_loss"] == 3923.4  # 3900 + 23.4 for a short
    assert eth["profit_target"] == 3825.12  # 3900 − 3.2 × 23.4
    assert eth["quantity"] == 0.48717  # 1900 / 3900 rounded down

    result = plan(settings, request, account, json.dumps(answer))
    assert result.rejections == ()
    assert [(o.coin, o.side, o.size, o.intent) for o in result.orders] == [
        ("BTC", OrderSide.BUY, D("0.01775"), OrderIntent.OPEN_LONG),
        ("ETH", OrderSide.SELL, D("0.4871"), OrderIntent.OPEN_SHORT),  # ETH lot 0.0001
    ]


def test_ema_cross_closes_when_the_trend_turns_and_holds_otherwise(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["ema-cross"]
    positions = {
        "BTC": make_position("BTC", "0.01", "105000"),  # long, 3m turned down → close
        "ETH": make_position("ETH", "-0.3", "4000"),  # short, still down → hold
        "SOL": make_position("SOL", "5", "180", leverage=3),  # long, still up → hold
    }
    trends = {"BTC": "turned_down", "ETH": "down", "SOL": "up", "XRP": "up"}
    request, account = make_request(settings, trends, positions=positions)
    answer = check_contract(decide(settings, request).text, request, schema)
    assert answer["BTC"] == {
        "coin": "BTC",
        "signal": "close",
        "justification": "the 3-minute trend turned against the position",
    }
    assert answer["ETH"]["signal"] == "hold"
    assert answer["ETH"]["quantity"] == 0.3
    assert answer["ETH"]["leverage"] == 5
    assert answer["SOL"]["signal"] == "hold"
    assert answer["SOL"]["leverage"] == 3
    assert answer["XRP"]["signal"] == "buy_to_enter"

    result = plan(settings, request, account, json.dumps(answer))
    assert result.rejections == ()
    close, entry = result.orders
    assert (close.coin, close.side, close.size, close.reduce_only) == (
        "BTC",
        OrderSide.SELL,
        D("0.01"),
        True,
    )
    assert (entry.coin, entry.side, entry.intent) == ("XRP", OrderSide.BUY, OrderIntent.OPEN_LONG)
    assert entry.size == D(791)  # 1900 / 2.4 = 791.67, whole XRP


def test_ema_cross_short_position_closes_when_the_trend_turns_up(
    shipped: dict[str, TraderSettings],
) -> None:
    settings = shipped["ema-cross"]
    positions = {"ETH": make_position("ETH", "-0.3", "4000")}
    request, account = make_request(settings, {"ETH": "turned_up"}, positions=positions)
    reply = decide(settings, request)
    assert json.loads(reply.text)["ETH"]["signal"] == "close"
    result = plan(settings, request, account, reply.text)
    assert [(o.coin, o.side, o.reduce_only) for o in result.orders] == [
        ("ETH", OrderSide.BUY, True)
    ]


# -- btc_hold -------------------------------------------------------------------------------


def test_btc_hold_buys_once_and_passes_the_risk_desk(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["btc-hold"]
    assert settings.coins == ("BTC",)
    assert settings.limits.major_coin_leverage == 1
    request, account = make_request(settings, {"BTC": "down"})  # the trend is irrelevant
    answer = check_contract(decide(settings, request).text, request, schema)
    assert list(answer) == ["BTC"]
    item = answer["BTC"]
    assert item["signal"] == "buy_to_enter"
    assert item["leverage"] == 1
    assert item["quantity"] == 0.02663  # 0.95 × min(3000 cash, 3000 max) / 107000
    assert item["stop_loss"] == 80250.0  # 25 % below
    assert item["profit_target"] == 192600.0  # 3.2 × the stop distance above
    assert item["risk_usd"] == 712.5  # 0.25 × 2850
    assert item["confidence"] == 0.9

    result = plan(settings, request, account, json.dumps(answer))
    assert result.rejections == ()
    (order,) = result.orders
    assert (order.coin, order.side, order.size, order.leverage) == (
        "BTC",
        OrderSide.BUY,
        D("0.02663"),
        1,
    )


def test_btc_hold_holds_what_it_bought(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["btc-hold"]
    positions = {"BTC": make_position("BTC", "0.02663", "100000", leverage=1)}
    request, account = make_request(settings, {"BTC": "down"}, positions=positions)
    answer = check_contract(decide(settings, request).text, request, schema)
    assert answer == {
        "BTC": {
            "coin": "BTC",
            "signal": "hold",
            "justification": "buy and hold",
            "quantity": 0.02663,
            "leverage": 1,
            "confidence": 0.8,
        }
    }
    result = plan(settings, request, account, json.dumps(answer))
    assert result == OrderPlan(orders=(), rejections=())


def test_btc_hold_without_btc_holds_everything(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["ema-cross"]
    settings = dataclasses.replace(settings, coins=("ETH", "SOL"), model="baseline:btc_hold")
    request, account = make_request(settings, {"ETH": "up"})
    answer = check_contract(decide(settings, request).text, request, schema)
    assert {c: item["signal"] for c, item in answer.items()} == {"ETH": "hold", "SOL": "hold"}
    assert plan(settings, request, account, json.dumps(answer)).orders == ()


# -- random ---------------------------------------------------------------------------------


def test_random_answers_valid_json_for_many_cycles(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    settings = shipped["random-walk"]
    positions = {"SOL": make_position("SOL", "4", "185", leverage=2)}
    signals: set[str] = set()
    for n in range(60):
        request, account = make_request(
            settings, {"BTC": "up"}, positions=positions, cycle_id=f"cycle-{n}"
        )
        text = decide(settings, request).text
        answer = check_contract(text, request, schema)
        assert set(answer) == set(ALL)
        assert answer["SOL"]["signal"] in ("hold", "close")
        signals |= {item["signal"] for item in answer.values()}
        result = plan(settings, request, account, text)
        # The only thing the risk desk may refuse: more entries than free position slots.
        assert {r.rule for r in result.rejections} <= {"max_positions"}
        for o in result.orders:
            if o.intent is not OrderIntent.CLOSE:
                assert o.size * PRICES[o.coin] <= settings.limits.max_position_size_usd
    assert signals == {s.value for s in Signal}


def test_random_is_deterministic_per_trader_and_cycle(shipped: dict[str, TraderSettings]) -> None:
    settings = shipped["random-walk"]
    request, _ = make_request(settings, {}, cycle_id="cycle-7")
    same, _ = make_request(settings, {}, cycle_id="cycle-7")
    assert decide(settings, request).text == decide(settings, same).text
    texts = {
        decide(settings, make_request(settings, {}, cycle_id=f"c{n}")[0]).text for n in range(20)
    }
    assert len(texts) > 1
    # Another trader name, same cycles: another sequence.
    others = [
        decide(settings, make_request(settings, {}, cycle_id=f"c{n}", trader="other")[0]).text
        for n in range(20)
    ]
    mine = [
        decide(settings, make_request(settings, {}, cycle_id=f"c{n}")[0]).text for n in range(20)
    ]
    assert others != mine


@pytest.mark.parametrize("trader", ["ema-cross", "btc-hold", "random-walk"])
def test_every_baseline_is_deterministic_for_the_same_request(
    shipped: dict[str, TraderSettings], trader: str
) -> None:
    settings = shipped[trader]
    trends = {"BTC": "up", "ETH": "down", "SOL": "turned_down", "XRP": "up"}
    request, _ = make_request(settings, trends, cycle_id="c-42")
    answers = {decide(settings, request).text for _ in range(3)}
    answers.add(decide(settings, make_request(settings, trends, cycle_id="c-42")[0]).text)
    assert len(answers) == 1


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["baseline:nope", "ema_cross", "baseline:", "gpt-5", "Baseline:random"]
)
def test_unknown_names_are_refused_listing_the_known_ones(name: str) -> None:
    with pytest.raises(ValueError, match="unknown baseline model") as info:
        BaselineModel(name, max_position_size_usd=D(1000))
    message = str(info.value)
    assert repr(name) in message
    for known in ("baseline:ema_cross", "baseline:btc_hold", "baseline:random"):
        assert known in message


# -- the matched random trader ---------------------------------------------------------------


def test_a_matched_random_trader_keeps_its_odds_leverage_and_size(
    shipped: dict[str, TraderSettings], schema: dict[str, Any]
) -> None:
    from infrastructure.models.baseline import RandomParams, parse_random

    params = RandomParams(entry=0.5, exit=1.0, leverage=2, notional=D("300"))
    assert parse_random(params.name()) == params
    settings = dataclasses.replace(shipped["random-walk"], model=params.name())
    positions = {"SOL": make_position("SOL", "4", "185", leverage=2)}
    entries = 0
    for n in range(40):
        request, _ = make_request(settings, {}, positions=positions, cycle_id=f"m-{n}")
        answer = check_contract(decide(settings, request).text, request, schema)
        assert answer["SOL"]["signal"] == "close"  # exit odds 1: a held coin always goes
        for coin, item in answer.items():
            if item["signal"] in ("buy_to_enter", "sell_to_enter"):
                entries += 1
                assert item["leverage"] == 2
                assert item["quantity"] * float(PRICES[coin]) <= 300.5
    flat_coin_cycles = 40 * (len(settings.coins) - 1)
    assert 0.35 < entries / flat_coin_cycles < 0.65
    # The default parameters draw exactly as the plain random trader does.
    plain = shipped["random-walk"]
    request, _ = make_request(plain, {}, cycle_id="c-9")
    default = dataclasses.replace(plain, model=RandomParams().name())
    assert json.loads(decide(default, request).text) == json.loads(decide(plain, request).text)


@pytest.mark.parametrize(
    "name",
    [
        "baseline:random@entry=2",
        "baseline:random@odds=0.1",
        "baseline:random@leverage=0",
        "baseline:random@notional=-5",
        "baseline:random@entry",
    ],
)
def test_bad_matched_random_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"baseline:random@"):
        BaselineModel(name, max_position_size_usd=D(1000))
