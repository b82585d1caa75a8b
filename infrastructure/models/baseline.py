"""Built-in deterministic decision models (``baseline:*``).

They answer with exactly the JSON an LLM must produce (the decision contract), so the
whole pipeline — parsing, validation, risk, orders, events, views — runs without keys
and without network. Each is deterministic for a given request.

* ``baseline:ema_cross`` — trend following on the 3-minute EMA20 and MACD, filtered by
  the 4-hour EMA20/EMA50 trend; exits when the 3-minute trend turns.
* ``baseline:btc_hold`` — buys BTC once and holds it.
* ``baseline:random`` — a seeded random trader (seed from the trader and the cycle id).
  ``baseline:random@entry=P,exit=Q,leverage=L,notional=N`` sets its odds of entering a
  flat coin and of leaving a held one per cycle, its leverage and its entry notional: the
  null of ``nof0 backtest --matched-null``, matched to a trader's turnover, holding time
  and leverage.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from application.ports import CoinSnapshot, DecisionReply, DecisionRequest, PositionView

PREFIX = "baseline:"
STOP_FRACTION = Decimal("0.006")  # stop distance as a fraction of the price
REWARD_RISK = Decimal("3.2")
RISK_FRACTION = Decimal("0.015")  # equity risked per entry
LEVERAGE = 5


def _quantity(price: Decimal, notional: Decimal) -> float:
    qty = (notional / price).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    return float(qty)


def _entry(
    coin: str,
    snap: CoinSnapshot,
    *,
    long: bool,
    equity: Decimal,
    max_notional: Decimal,
    confidence: float,
    why: str,
    stop_fraction: Decimal = STOP_FRACTION,
    leverage: int = LEVERAGE,
) -> dict[str, Any]:
    price = snap.price
    distance = price * stop_fraction
    stop = price - distance if long else price + distance
    target = price + distance * REWARD_RISK if long else price - distance * REWARD_RISK
    risk_usd = equity * RISK_FRACTION
    notional = min(risk_usd / stop_fraction, max_notional * Decimal("0.95"))
    return {
        "coin": coin,
        "signal": "buy_to_enter" if long else "sell_to_enter",
        "quantity": _quantity(price, notional),
        "leverage": leverage,
        "profit_target": float(f"{target:.6g}"),
        "stop_loss": float(f"{stop:.6g}"),
        "invalidation_condition": (
            f"3-minute close {'below' if long else 'above'} EMA20 with MACD turning "
            f"{'negative' if long else 'positive'}"
        ),
        "confidence": confidence,
        "risk_usd": float(round(risk_usd, 2)),
        "justification": why,
    }


def _hold(coin: str, position: PositionView | None, why: str) -> dict[str, Any]:
    item: dict[str, Any] = {"coin": coin, "signal": "hold", "justification": why}
    if position is not None:
        item["quantity"] = float(abs(position.quantity))
        item["leverage"] = position.leverage
        if position.confidence is not None:
            item["confidence"] = float(position.confidence)
    return item


def _close(coin: str, why: str) -> dict[str, Any]:
    return {"coin": coin, "signal": "close", "justification": why}


def _positions(request: DecisionRequest) -> dict[str, PositionView]:
    return {p.coin: p for p in request.account.positions}


def ema_cross(request: DecisionRequest, max_notional: Decimal) -> dict[str, Any]:
    positions = _positions(request)
    answer: dict[str, Any] = {}
    for coin in request.coins:
        snap = request.snapshot.coins[coin]
        price = float(snap.price)
        up = price > snap.ema20 and snap.macd > 0 and snap.long_term.ema20 > snap.long_term.ema50
        down = price < snap.ema20 and snap.macd < 0 and snap.long_term.ema20 < snap.long_term.ema50
        position = positions.get(coin)
        if position is not None:
            long = position.quantity > 0
            turned = (
                (price < snap.ema20 and snap.macd < 0)
                if long
                else (price > snap.ema20 and snap.macd > 0)
            )
            answer[coin] = (
                _close(coin, "the 3-minute trend turned against the position")
                if turned
                else _hold(coin, position, "trend intact")
            )
        elif up or down:
            answer[coin] = _entry(
                coin,
                snap,
                long=up,
                equity=request.account.equity,
                max_notional=max_notional,
                confidence=0.8,
                why=(
                    f"price {'above' if up else 'below'} EMA20 {snap.ema20:.6g}, MACD "
                    f"{snap.macd:.4g}, 4h EMA20 {'above' if up else 'below'} EMA50"
                ),
            )
        else:
            answer[coin] = _hold(coin, None, "no aligned trend")
    return answer


def btc_hold(request: DecisionRequest, max_notional: Decimal) -> dict[str, Any]:
    positions = _positions(request)
    if "BTC" not in request.coins:
        return {coin: _hold(coin, None, "BTC is not traded here") for coin in request.coins}
    if "BTC" in positions:
        return {"BTC": _hold("BTC", positions["BTC"], "buy and hold")}
    snap = request.snapshot.coins["BTC"]
    price = snap.price
    notional = min(request.account.available_cash, max_notional) * Decimal("0.95")
    # A wide stop (25 %) keeps the position through noise; the target respects the minimum
    # reward/risk so the risk desk accepts it.
    stop_fraction = Decimal("0.25")
    item = _entry(
        "BTC",
        snap,
        long=True,
        equity=request.account.equity,
        max_notional=max_notional,
        confidence=0.9,
        why="buy and hold BTC: the benchmark every trader has to beat",
        stop_fraction=stop_fraction,
        leverage=1,
    )
    item["quantity"] = _quantity(price, notional)
    item["risk_usd"] = float(round(notional * stop_fraction, 2))
    return {"BTC": item}


@dataclass(frozen=True)
class RandomParams:
    entry: float = 0.12  # per cycle, a flat coin's odds of an entry
    exit: float = 0.15  # per cycle, a held coin's odds of a close
    leverage: int = LEVERAGE
    notional: Decimal | None = None  # an entry's notional (None: 40-100 % of the maximum)

    def name(self) -> str:
        notional = "" if self.notional is None else f",notional={self.notional:.2f}"
        return (
            f"{PREFIX}{MATCHED}entry={self.entry:.6g},exit={self.exit:.6g},"
            f"leverage={self.leverage}{notional}"
        )


MATCHED = "random@"
_KEYS = {"entry", "exit", "leverage", "notional"}


def parse_random(name: str) -> RandomParams | None:
    """The parameters of ``baseline:random@…`` (None for any other name); raises
    ``ValueError`` naming what is wrong."""
    if not name.startswith(PREFIX + MATCHED):
        return None
    values: dict[str, str] = {}
    for part in name[len(PREFIX + MATCHED) :].split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS:
            raise ValueError(f"{name!r}: {part!r} is not one of {', '.join(sorted(_KEYS))}=value")
        values[key] = value
    try:
        params = RandomParams(
            entry=float(values.get("entry", 0.12)),
            exit=float(values.get("exit", 0.15)),
            leverage=int(values.get("leverage", LEVERAGE)),
            notional=Decimal(values["notional"]) if "notional" in values else None,
        )
    except (ValueError, ArithmeticError) as exc:
        raise ValueError(f"{name!r}: {exc}") from None
    if not (0 <= params.entry <= 1 and 0 <= params.exit <= 1):
        raise ValueError(f"{name!r}: entry and exit are odds between 0 and 1")
    if not 1 <= params.leverage <= 50 or (params.notional is not None and params.notional <= 0):
        raise ValueError(f"{name!r}: leverage is 1-50 and notional above 0")
    return params


def known_baseline(name: str) -> bool:
    if not name.startswith(PREFIX):
        return False
    try:
        return name[len(PREFIX) :] in STRATEGIES or parse_random(name) is not None
    except ValueError:
        return False


def random_trader(
    request: DecisionRequest,
    max_notional: Decimal,
    replica: int = 0,
    params: RandomParams = RandomParams(),
) -> dict[str, Any]:
    # Deterministic per trader and cycle, and per replica of a backtest (replica 0 keeps
    # the draws every run before replicas had).
    key = f"{request.trader}|{request.cycle_id}" + (f"|{replica}" if replica else "")
    rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
    positions = _positions(request)
    answer: dict[str, Any] = {}
    for coin in request.coins:
        position = positions.get(coin)
        roll = rng.random()
        if position is not None:
            answer[coin] = (
                _close(coin, "random exit")
                if roll < params.exit
                else _hold(coin, position, "random hold")
            )
        elif roll < params.entry:
            long = rng.random() < 0.5
            share = Decimal(str(round(0.4 + 0.6 * rng.random(), 3)))  # drawn either way
            answer[coin] = _entry(
                coin,
                request.snapshot.coins[coin],
                long=long,
                equity=request.account.equity,
                max_notional=max_notional * share
                if params.notional is None
                else min(max_notional, params.notional / Decimal("0.95")),
                confidence=round(0.76 + 0.2 * rng.random(), 2),
                why="random entry (a control for luck)",
                leverage=params.leverage,
            )
        else:
            answer[coin] = _hold(coin, None, "random hold")
    return answer


STRATEGIES: dict[str, Callable[[DecisionRequest, Decimal], dict[str, Any]]] = {
    "ema_cross": ema_cross,
    "btc_hold": btc_hold,
    "random": random_trader,
}


class BaselineModel:
    """A ``DecisionModel`` that answers instantly and for free."""

    in_process = True  # no call leaves the process: the question needs no record of its own

    def __init__(self, name: str, *, max_position_size_usd: Decimal, replica: int = 0) -> None:
        params = parse_random(name)
        if params is None and (
            not name.startswith(PREFIX) or name[len(PREFIX) :] not in STRATEGIES
        ):
            known = ", ".join(PREFIX + k for k in STRATEGIES)
            raise ValueError(f"unknown baseline model {name!r}; known: {known}, {PREFIX}{MATCHED}…")
        self.name = name
        self._params = params or RandomParams()
        self._strategy = random_trader if params is not None else STRATEGIES[name[len(PREFIX) :]]
        self._max_notional = max_position_size_usd
        self.replica = replica  # a backtest replica's seed: only the random trader draws

    async def decide(self, request: DecisionRequest) -> DecisionReply:
        if self._strategy is random_trader:
            answer = random_trader(request, self._max_notional, self.replica, self._params)
        else:
            answer = self._strategy(request, self._max_notional)
        text = json.dumps(answer, separators=(",", ":"))
        return DecisionReply(text=text, model=self.name)
