"""Event-driven model calls: cheap deterministic gates that decide, every tick, whether a
trader's model is asked now (issue 9 part 6).

A trader with ``triggers`` is not called on a fixed timer; it is called when one of its
gates fires (or its ``max_interval`` has passed since the last call):

* ``atr_move`` — a coin's price moved at least ``k`` ATR since the last call. The ATR is
  Wilder's, over ``atr_period`` bars of ``bar_s`` seconds built from the prices the tick
  sees (the mids it marks the venues with), so no candle request is needed;
* ``indicator`` — an EMA cross (fast over or under slow) or an RSI crossing a level, on the
  same bars, since the last call;
* ``fill`` — a fill was booked outside a decision (a resting order, a stop or target);
* ``stop_or_target`` — a position closed outside a decision (stop, target, liquidation);
* ``funding_window`` — a position is held and the hourly funding settlement is at most
  ``funding_window_s`` away (once per window);
* ``invalidation`` — a held position's invalidation condition is met. Only a price level
  ("below 3800", "above 104,500") can be checked in code; any other text cannot be
  evaluated, which the gate records.

Fail closed: a gate that cannot be evaluated (no price yet, the ATR still warming up, an
invalidation condition that is not a price level) does not keep the trader silent — the
trader's ordinary decision interval applies again, and the gate is counted as
``unavailable``.

Pure: the state is fed the tick's time and prices; no I/O, no clock. Per trader the state
is a few numbers per coin and gate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

#: Hyperliquid settles funding every hour, on the hour.
FUNDING_PERIOD_S = 3600.0


class Gate(StrEnum):
    """The gates; their values are the names recorded in ``DecisionTriggered``."""

    ATR_MOVE = "atr_move"
    INDICATOR = "indicator"
    FILL = "fill"
    STOP_OR_TARGET = "stop_or_target"
    FUNDING_WINDOW = "funding_window"
    INVALIDATION = "invalidation"


class IndicatorKind(StrEnum):
    EMA_CROSS = "ema_cross"
    RSI = "rsi"


@dataclass(frozen=True)
class IndicatorRule:
    """``ema_cross``: EMA(fast) crossed EMA(slow); ``rsi``: RSI(period) crossed ``above``
    upwards or ``below`` downwards. ``coins`` empty: every coin of the trader."""

    kind: IndicatorKind
    fast: int = 9
    slow: int = 21
    period: int = 14
    above: float | None = None
    below: float | None = None
    coins: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.kind is IndicatorKind.EMA_CROSS:
            return f"ema_cross({self.fast},{self.slow})"
        levels = ",".join(
            f"{name}{level:g}"
            for name, level in (("above", self.above), ("below", self.below))
            if level is not None
        )
        return f"rsi({self.period}):{levels}"


@dataclass(frozen=True)
class TriggerRules:
    """A trader's triggers (``triggers`` in its configuration)."""

    max_interval_s: float  # a call at least this often, whatever the gates say
    min_interval_s: float = 0.0  # no call sooner than this after the last one
    atr_move: float | None = None  # k: a move of k ATR since the last call
    atr_period: int = 14
    bar_s: float = 300.0  # the bars ATR and indicators are computed on
    on_fill: bool = False
    on_stop_or_target: bool = False
    funding_window_s: float | None = None
    invalidation: bool = False
    indicators: tuple[IndicatorRule, ...] = ()

    @property
    def gates(self) -> tuple[Gate, ...]:
        """The gates these rules enable, in a fixed order."""
        on = {
            Gate.ATR_MOVE: self.atr_move is not None,
            Gate.INDICATOR: bool(self.indicators),
            Gate.FILL: self.on_fill,
            Gate.STOP_OR_TARGET: self.on_stop_or_target,
            Gate.FUNDING_WINDOW: self.funding_window_s is not None,
            Gate.INVALIDATION: self.invalidation,
        }
        return tuple(g for g, enabled in on.items() if enabled)

    @property
    def price_based(self) -> bool:
        """Whether a gate follows prices (then the trader is evaluated every tick)."""
        return bool(
            self.atr_move is not None
            or self.indicators
            or self.invalidation
            or self.funding_window_s is not None
        )


# -- incremental kernels on bars -------------------------------------------------------------


@dataclass
class _Ema:
    period: int
    value: float | None = None
    seen: int = 0
    _sum: float = 0.0

    def update(self, x: float) -> float | None:
        """Seeded with the mean of the first ``period`` values (TA-Lib's convention)."""
        self.seen += 1
        if self.value is None:
            self._sum += x
            if self.seen >= self.period:
                self.value = self._sum / self.period
            return self.value
        alpha = 2.0 / (self.period + 1)
        self.value = alpha * x + (1 - alpha) * self.value
        return self.value


@dataclass
class _Rsi:
    period: int
    gain: float = 0.0
    loss: float = 0.0
    seen: int = 0  # changes seen
    value: float | None = None

    def update(self, change: float) -> float | None:
        """Wilder's RSI over bar-to-bar changes."""
        up, down = max(change, 0.0), max(-change, 0.0)
        self.seen += 1
        n = self.period
        if self.seen <= n:
            self.gain += up / n
            self.loss += down / n
            if self.seen < n:
                return None
        else:
            self.gain = (self.gain * (n - 1) + up) / n
            self.loss = (self.loss * (n - 1) + down) / n
        total = self.gain + self.loss
        self.value = 50.0 if total == 0 else 100.0 * self.gain / total
        return self.value


@dataclass
class _IndicatorState:
    rule: IndicatorRule
    fast: _Ema | None = None
    slow: _Ema | None = None
    rsi: _Rsi | None = None
    side: int = 0  # ema_cross: sign of fast - slow at the last closed bar
    last_rsi: float | None = None
    fired: bool = False  # crossed since the last call

    def __post_init__(self) -> None:
        if self.rule.kind is IndicatorKind.EMA_CROSS:
            self.fast, self.slow = _Ema(self.rule.fast), _Ema(self.rule.slow)
        else:
            self.rsi = _Rsi(self.rule.period)

    @property
    def ready(self) -> bool:
        if self.rule.kind is IndicatorKind.EMA_CROSS:
            return self.side != 0
        return self.last_rsi is not None

    def on_bar(self, close: float, previous: float | None) -> None:
        rule = self.rule
        if rule.kind is IndicatorKind.EMA_CROSS:
            assert self.fast is not None
            assert self.slow is not None
            fast, slow = self.fast.update(close), self.slow.update(close)
            if fast is None or slow is None or fast == slow:
                return
            side = 1 if fast > slow else -1
            if self.side and side != self.side:
                self.fired = True
            self.side = side
            return
        assert self.rsi is not None
        if previous is None:
            return
        value = self.rsi.update(close - previous)
        if value is None:
            return
        before = self.last_rsi
        if before is not None:
            if rule.above is not None and before < rule.above <= value:
                self.fired = True
            if rule.below is not None and before > rule.below >= value:
                self.fired = True
        self.last_rsi = value


@dataclass
class CoinGate:
    """One coin's bars (high, low, close of the forming bar), Wilder's ATR and indicators."""

    bar_s: float
    atr_period: int
    indicators: list[_IndicatorState] = field(default_factory=list)
    bucket: int | None = None
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    prev_close: float | None = None
    bars: int = 0  # closed bars (the first has no true range)
    atr: float | None = None
    _tr_sum: float = 0.0

    def observe(self, at: datetime, price: float) -> None:
        bucket = math.floor(at.timestamp() / self.bar_s)
        if self.bucket is None:
            self.bucket, self.high, self.low, self.close = bucket, price, price, price
            return
        if bucket != self.bucket:
            self._close_bar()
            self.bucket, self.high, self.low, self.close = bucket, price, price, price
            return
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price

    def _close_bar(self) -> None:
        prev = self.prev_close
        self.bars += 1
        for indicator in self.indicators:
            indicator.on_bar(self.close, prev)
        self.prev_close = self.close
        if prev is None:
            return  # true range from the second bar on (TA-Lib's convention)
        tr = max(self.high - self.low, abs(self.high - prev), abs(self.low - prev))
        n = self.atr_period
        if self.atr is None:
            self._tr_sum += tr
            if self.bars - 1 >= n:
                self.atr = self._tr_sum / n
        else:
            self.atr = (self.atr * (n - 1) + tr) / n


# -- invalidation conditions -----------------------------------------------------------------

_LEVEL = re.compile(
    r"\b(?P<dir>below|under|beneath|above|over)\s+\$?(?P<num>\d[\d,]*(?:\.\d+)?)(?![\d.]*\s*%)",
    re.IGNORECASE,
)
_SIGN = re.compile(r"(?P<dir>[<>])\s*=?\s*\$?(?P<num>\d[\d,]*(?:\.\d+)?)")


def invalidation_level(condition: str) -> tuple[str, float] | None:
    """A price level in an invalidation condition: ("below", 3800.0) for "a close below
    3,800"; None when the condition is not one price level (it cannot be checked in code)."""
    found = [*(_LEVEL.finditer(condition)), *(_SIGN.finditer(condition))]
    if len(found) != 1:
        return None
    match = found[0]
    word = match.group("dir").lower()
    side = "below" if word in ("below", "under", "beneath", "<") else "above"
    return side, float(match.group("num").replace(",", ""))


# -- the gate state and its verdict ----------------------------------------------------------


@dataclass(frozen=True)
class HeldPosition:
    coin: str
    invalidation_condition: str


@dataclass(frozen=True)
class TraderFacts:
    """What the gates read of the trader (its aggregate as of this tick)."""

    positions: tuple[HeldPosition, ...] = ()
    last_fill_at: datetime | None = None
    closed_trades: int = 0


@dataclass(frozen=True)
class Verdict:
    fired: tuple[str, ...]  # e.g. ("atr_move:BTC",), ("max_interval",)
    quiet: tuple[Gate, ...]  # evaluated and held
    unavailable: tuple[Gate, ...]  # could not be evaluated

    @property
    def call(self) -> bool:
        return bool(self.fired)


@dataclass(frozen=True)
class WakeRecord:
    """What the gates did between two calls (the payload of ``DecisionTriggered``)."""

    fired: tuple[str, ...]
    since: datetime | None
    ticks_gated: int
    quiet: dict[str, int]
    unavailable: dict[str, int]
    timer_calls: int  # what the decision interval would have called in the same time


@dataclass
class TriggerState:
    """One trader's gates: bars per coin, the prices at the last call, what the trader's
    fills and closes were then, and the aggregate of the ticks gated since."""

    rules: TriggerRules
    coins: dict[str, CoinGate] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)  # prices at the last call
    fills_seen: datetime | None = None
    closes_seen: int | None = None
    funding_window_seen: int | None = None  # the funding hour whose window was answered
    ticks_gated: int = 0
    quiet: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, int] = field(default_factory=dict)

    def _coin(self, coin: str) -> CoinGate:
        gate = self.coins.get(coin)
        if gate is None:
            rules = self.rules
            wanted = [
                _IndicatorState(rule)
                for rule in rules.indicators
                if not rule.coins or coin in rule.coins
            ]
            gate = CoinGate(rules.bar_s, rules.atr_period, wanted)
            self.coins[coin] = gate
        return gate

    def observe(self, at: datetime, prices: Mapping[str, Decimal]) -> None:
        """Feed the tick's prices (call once per tick, before :meth:`check`)."""
        for coin, price in sorted(prices.items()):
            self._coin(coin).observe(at, float(price))

    def settle(self, facts: TraderFacts) -> None:
        """After a call: the fills and closes it made are not news."""
        self.fills_seen = facts.last_fill_at
        self.closes_seen = facts.closed_trades

    def check(
        self,
        now: datetime,
        *,
        coins: tuple[str, ...],
        prices: Mapping[str, Decimal],
        last_call_at: datetime,
        interval_s: float,
        facts: TraderFacts,
    ) -> Verdict:
        """Whether the trader is called now, and why (or why not)."""
        rules = self.rules
        elapsed = (now - last_call_at).total_seconds()
        fired: list[str] = []
        quiet: list[Gate] = []
        unavailable: list[Gate] = []
        if self.closes_seen is None:
            self.settle(facts)  # a fresh state (a restart): what happened before is known
        for gate in rules.gates:
            result = self._gate(gate, now, coins, prices, facts)
            if result is None:
                unavailable.append(gate)
            elif result:
                fired.extend(result)
            else:
                quiet.append(gate)
        if elapsed < rules.min_interval_s:
            return Verdict((), tuple(quiet), tuple(unavailable))
        if not fired and elapsed >= rules.max_interval_s:
            fired.append("max_interval")
        if not fired and unavailable and elapsed >= interval_s:
            fired.append("timer_fallback:" + "+".join(g.value for g in unavailable))
        return Verdict(tuple(fired), tuple(quiet), tuple(unavailable))

    def _gate(
        self,
        gate: Gate,
        now: datetime,
        coins: tuple[str, ...],
        prices: Mapping[str, Decimal],
        facts: TraderFacts,
    ) -> list[str] | None:
        """What fired (empty: quiet), or None when the gate cannot be evaluated."""
        rules = self.rules
        if gate is Gate.ATR_MOVE:
            assert rules.atr_move is not None
            out: list[str] = []
            for coin in coins:
                price, ref = prices.get(coin), self.reference.get(coin)
                atr = self.coins[coin].atr if coin in self.coins else None
                if price is None or ref is None or atr is None or atr <= 0:
                    return None
                if abs(float(price) - ref) >= rules.atr_move * atr:
                    out.append(f"atr_move:{coin}")
            return out
        if gate is Gate.INDICATOR:
            out = []
            for coin in coins:
                states = self.coins[coin].indicators if coin in self.coins else None
                if states is None:
                    return None
                for state in states:
                    if state.fired:
                        out.append(f"indicator:{state.rule.label}:{coin}")
                    elif not state.ready:
                        return None
            return out
        if gate is Gate.FILL:
            news = facts.last_fill_at is not None and facts.last_fill_at != self.fills_seen
            return ["fill"] if news else []
        if gate is Gate.STOP_OR_TARGET:
            return ["stop_or_target"] if facts.closed_trades != self.closes_seen else []
        if gate is Gate.FUNDING_WINDOW:
            assert rules.funding_window_s is not None
            if not facts.positions:
                return []
            t = now.timestamp()
            hour = math.floor(t / FUNDING_PERIOD_S) + 1  # the next settlement
            left = hour * FUNDING_PERIOD_S - t
            if left <= rules.funding_window_s and self.funding_window_seen != hour:
                return ["funding_window"]
            return []
        # invalidation
        out = []
        for held in facts.positions:
            level = invalidation_level(held.invalidation_condition)
            price = prices.get(held.coin)
            if level is None or price is None:
                return None
            side, value = level
            if (side == "below" and float(price) < value) or (
                side == "above" and float(price) > value
            ):
                out.append(f"invalidation:{held.coin}")
        return out

    def skipped(self, verdict: Verdict) -> None:
        """Count a tick on which the trader was not called."""
        self.ticks_gated += 1
        for gate in verdict.quiet:
            self.quiet[gate.value] = self.quiet.get(gate.value, 0) + 1
        for gate in verdict.unavailable:
            self.unavailable[gate.value] = self.unavailable.get(gate.value, 0) + 1

    def called(
        self,
        now: datetime,
        prices: Mapping[str, Decimal],
        fired: tuple[str, ...],
        since: datetime | None,
        interval_s: float,
    ) -> WakeRecord:
        """The trader is called now: the record of what was gated, and a fresh start."""
        record = WakeRecord(
            fired=fired,
            since=since,
            ticks_gated=self.ticks_gated,
            quiet=dict(sorted(self.quiet.items())),
            unavailable=dict(sorted(self.unavailable.items())),
            timer_calls=timer_calls(since, now, interval_s),
        )
        self.reference.update({coin: float(price) for coin, price in prices.items()})
        for gate in self.coins.values():
            for indicator in gate.indicators:
                indicator.fired = False
        window = self.rules.funding_window_s
        if window is not None:
            t = now.timestamp()
            hour = math.floor(t / FUNDING_PERIOD_S) + 1
            if hour * FUNDING_PERIOD_S - t <= window:
                self.funding_window_seen = hour  # this window is answered, whatever fired
        self.ticks_gated = 0
        self.quiet = {}
        self.unavailable = {}
        return record


def timer_calls(since: datetime | None, now: datetime, interval_s: float) -> int:
    """The calls a fixed timer of ``interval_s`` would have made after ``since`` up to and
    including ``now`` (what one triggered call stands for)."""
    if since is None or interval_s <= 0:
        return 1
    return int((now - since) / timedelta(seconds=interval_s))
