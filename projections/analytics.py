"""The analytics view: nof1's six breakdown tables per trader.

Statistics over closed trades (fees, P&L, winners and losers, longs and shorts, sizes,
holding periods), over every decision item the model returned (signals, confidence,
leverage), over time in the market (minutes long, short or flat) and over invocations
(the gaps between them, tokens and cost). Standard deviations are population (ddof 0).
Primary file ``analytics.json``; one ``analytics-{model_id}.json`` per trader as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec
import numpy as np

from domain.trader import Trader
from projections.common import conversation_doc_id, num, originator, seconds, trade_doc_id
from projections.documents import AnalyticsDocument, ModelAnalytics
from projections.engine import Projector, ViewMeta

SIGNALS = {"buy_to_enter": "long", "sell_to_enter": "short", "hold": "hold", "close": "close"}
Table = dict[str, float | int]


class TradeStat(msgspec.Struct, array_like=True):
    net: float
    gross: float
    fees: float
    notional: float
    hold_mins: float
    long: bool
    tp_pct: float
    sl_pct: float
    portfolio_pct: float


class Running(msgspec.Struct, array_like=True):
    """Count, mean and M2 (Welford), with min and max."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = 0.0
    high: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        if self.n == 1:
            self.low = self.high = value
        else:
            self.low = min(self.low, value)
            self.high = max(self.high, value)
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    def std(self) -> float:
        return (self.m2 / self.n) ** 0.5 if self.n > 0 else 0.0


class TraderStats(msgspec.Struct):
    id: str
    allocation: float
    inception: float
    closed_net: float = 0.0
    trades: list[TradeStat] = []
    counts: dict[str, int] = {}
    confidence: dict[str, dict[str, int]] = {}  # signal kind → value → count
    leverage: dict[str, dict[str, int]] = {}  # long/short → value → count
    exposure: dict[str, float] = {}  # coin → signed quantity
    exposure_price: dict[str, float] = {}  # coin → last fill price
    exposure_kind: str = "flat"
    exposure_since: float = 0.0
    minutes: dict[str, float] = {}
    last_invocation: float = 0.0
    gaps: Running = msgspec.field(default_factory=Running)
    invocations: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    updated_at: float = 0.0
    last_trade_exit_time: float = 0.0
    last_trade_doc_id: str = ""
    last_convo_doc_id: str = ""
    last_convo_timestamp: float = 0.0


class AnalyticsMeta(ViewMeta):
    names: dict[str, str] = {}
    traders: dict[str, TraderStats] = {}


class AnalyticsState(msgspec.Struct):
    analytics: list[ModelAnalytics] = []
    view: AnalyticsMeta = msgspec.field(name="_view", default_factory=lambda: AnalyticsMeta(""))


_TALLIES: dict[tuple[Any, Any, Any], tuple[str | None, str | None, str | None]] = {}


_Tally = tuple[str | None, str | None, str | None]


def _tally(signal: Any, confidence: Any, leverage: Any) -> _Tally:
    """A decision item's signal kind and its confidence and leverage bucket keys (None: not
    counted). Models repeat a handful of combinations, so each is worked out once."""
    key = (signal, confidence, leverage)
    try:
        known = _TALLIES.get(key)
    except TypeError:  # an unhashable value: worked out, not kept
        return _work_out(signal, confidence, leverage)
    if known is None:
        known = _work_out(signal, confidence, leverage)
        if len(_TALLIES) >= 4096:
            _TALLIES.clear()
        _TALLIES[key] = known
    return known


def _work_out(
    signal: Any, confidence: Any, leverage: Any
) -> tuple[str | None, str | None, str | None]:
    kind = SIGNALS.get(signal)
    if kind is None:
        return None, None, None
    return (
        kind,
        None if confidence is None else f"{float(confidence):g}",
        f"{int(leverage)}" if kind in ("long", "short") and leverage is not None else None,
    )


def _stats(values: list[float]) -> tuple[float, float, float]:
    """(mean, std, median), zeros when empty."""
    if not values:
        return 0.0, 0.0, 0.0
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std()), float(np.median(array))


def _counter_stats(counter: dict[str, int]) -> tuple[float, float, float]:
    if not counter:
        return 0.0, 0.0, 0.0
    values = np.repeat(
        np.asarray([float(k) for k in counter], dtype=np.float64),
        np.asarray(list(counter.values()), dtype=np.int64),
    )
    return float(values.mean()), float(values.std()), float(np.median(values))


def _merge(counters: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for counter in counters:
        for key, count in counter.items():
            merged[key] = merged.get(key, 0) + count
    return merged


def _pct(part: float, whole: float) -> float:
    return part / whole * 100 if whole else 0.0


class AnalyticsProjector(Projector[AnalyticsState]):
    name = "analytics"
    version = 1
    primary = "analytics.json"
    state_type: ClassVar[type[Any]] = AnalyticsState
    handles: ClassVar[frozenset[type[Any]] | None] = frozenset(
        {
            Trader.Registered,
            Trader.CapitalAllocated,
            Trader.DecisionRequested,
            Trader.LLMResponded,
            Trader.LLMFailed,
            Trader.OrderFilled,
            Trader.PositionClosed,
        }
    )
    ignores: ClassVar[Mapping[type[Any], frozenset[str]]] = {
        Trader.DecisionRequested: frozenset(
            {"snapshot", "user_prompt", "marks", "prompt_template", "snapshot_digest"}
        ),
        Trader.LLMResponded: frozenset({"raw_text", "cot_trace"}),
        Trader.LLMFailed: frozenset({"raw_text", "detail"}),
    }

    def __init__(self) -> None:
        self._handlers: dict[type[Any], Callable[[AnalyticsState, Any, Any], bool]] = {
            Trader.Registered: self._registered,
            Trader.CapitalAllocated: self._allocated,
            Trader.DecisionRequested: self._requested,
            Trader.LLMResponded: self._responded,
            Trader.LLMFailed: self._failed,
            Trader.OrderFilled: self._filled,
            Trader.PositionClosed: self._closed,
        }

    def initial(self) -> AnalyticsState:
        return AnalyticsState(view=AnalyticsMeta(self.view_name))

    def meta(self, state: AnalyticsState) -> ViewMeta:
        return state.view

    def reduce(self, state: AnalyticsState, kind: type[Any], event: Any) -> bool:
        handler = self._handlers.get(kind)
        if handler is None:
            return False
        if kind is Trader.Registered:
            return handler(state, None, event)
        trader = state.view.names.get(originator(event))
        stats = state.view.traders.get(trader) if trader else None
        if stats is None:
            return False
        stats.updated_at = max(stats.updated_at, seconds(event.timestamp))
        return handler(state, stats, event)

    # -- handlers ---------------------------------------------------------------------------

    def _registered(self, state: AnalyticsState, _: Any, event: Any) -> bool:
        state.view.names[originator(event)] = event.config_id
        at = seconds(event.timestamp)
        state.view.traders[event.config_id] = TraderStats(
            id=event.config_id,
            allocation=num(event.allocation),
            inception=at,
            exposure_since=at,
            updated_at=at,
        )
        return True

    def _allocated(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        stats.allocation = num(event.allocation)
        return True

    def _requested(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        at = seconds(event.as_of)
        if stats.invocations > 0:
            stats.gaps.add((at - stats.last_invocation) / 60)
        stats.invocations += 1
        stats.last_invocation = at
        return True

    def _responded(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        counts, confidences, leverages = stats.counts, stats.confidence, stats.leverage
        for item in event.decisions:
            kind, confidence, leverage = _tally(
                item["signal"], item.get("confidence"), item.get("leverage")
            )
            if kind is None:
                continue
            counts[kind] = counts.get(kind, 0) + 1
            if confidence is not None:
                bucket = confidences.setdefault(kind, {})
                bucket[confidence] = bucket.get(confidence, 0) + 1
            if leverage is not None:
                bucket = leverages.setdefault(kind, {})
                bucket[leverage] = bucket.get(leverage, 0) + 1
        stats.tokens += event.tokens_in + event.tokens_out
        stats.cost_usd += num(event.cost_usd)
        self._conversation(stats, event)
        return True

    def _failed(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        self._conversation(stats, event)
        return True

    @staticmethod
    def _conversation(stats: TraderStats, event: Any) -> None:
        stats.last_convo_doc_id = conversation_doc_id(stats.id, event.timestamp)
        stats.last_convo_timestamp = seconds(event.timestamp)

    def _filled(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        at = seconds(event.timestamp)
        stats.minutes[stats.exposure_kind] = (
            stats.minutes.get(stats.exposure_kind, 0.0) + (at - stats.exposure_since) / 60
        )
        signed = num(event.size) if event.side == "buy" else -num(event.size)
        quantity = stats.exposure.get(event.coin, 0.0) + signed
        if abs(quantity) < 1e-12:
            stats.exposure.pop(event.coin, None)
            stats.exposure_price.pop(event.coin, None)
        else:
            stats.exposure[event.coin] = quantity
            stats.exposure_price[event.coin] = num(event.price)
        net = sum(q * stats.exposure_price[c] for c, q in stats.exposure.items())
        longs = sum(1 for q in stats.exposure.values() if q > 0)
        shorts = sum(1 for q in stats.exposure.values() if q < 0)
        if not stats.exposure:
            stats.exposure_kind = "flat"
        elif longs and not shorts:
            stats.exposure_kind = "long"
        elif shorts and not longs:
            stats.exposure_kind = "short"
        else:
            stats.exposure_kind = "long" if net >= 0 else "short"
        stats.exposure_since = at
        return False

    def _closed(self, state: AnalyticsState, stats: TraderStats, event: Any) -> bool:
        entry = num(event.entry_price)
        size = num(event.size)
        notional = entry * size
        plan = event.exit_plan or {}
        target = float(plan.get("profit_target") or 0)
        stop = float(plan.get("stop_loss") or 0)
        equity = stats.allocation + stats.closed_net
        stats.trades.append(
            TradeStat(
                net=num(event.net_pnl),
                gross=num(event.gross_pnl),
                fees=num(event.entry_fees + event.exit_fees),
                notional=notional,
                hold_mins=(seconds(event.closed_at) - seconds(event.opened_at)) / 60,
                long=event.side == "long",
                tp_pct=abs(target - entry) / entry * 100 if target and entry else 0.0,
                sl_pct=abs(entry - stop) / entry * 100 if stop and entry else 0.0,
                portfolio_pct=_pct(notional, equity),
            )
        )
        stats.closed_net += num(event.net_pnl)
        stats.last_trade_exit_time = seconds(event.closed_at)
        stats.last_trade_doc_id = trade_doc_id(stats.id, event.entry_cloid, event.exit_cloid)
        return True

    # -- rendering --------------------------------------------------------------------------

    def _render(self, stats: TraderStats) -> ModelAnalytics:
        return ModelAnalytics(
            id=stats.id,
            model_id=stats.id,
            updated_at=stats.updated_at,
            last_trade_exit_time=stats.last_trade_exit_time,
            last_convo_doc_id=stats.last_convo_doc_id,
            last_convo_timestamp=stats.last_convo_timestamp,
            last_trade_doc_id=stats.last_trade_doc_id,
            fee_pnl_moves_breakdown_table=_fees_table(stats.trades),
            winners_losers_breakdown_table=_winners_table(stats.trades),
            signals_breakdown_table=_signals_table(stats),
            longs_shorts_breakdown_table=_longs_shorts_table(stats.trades),
            overall_trades_overview_table=_overview_table(stats),
            invocation_breakdown_table=_invocation_table(stats),
        )

    def _refresh(self, state: AnalyticsState) -> None:
        state.analytics = [self._render(s) for s in state.view.traders.values()]

    def output(self, state: AnalyticsState, position: int) -> Any:
        self._refresh(state)
        return super().output(state, position)

    def secondary(self, state: AnalyticsState) -> dict[str, msgspec.Struct]:
        return {
            f"analytics-{item.model_id}.json": AnalyticsDocument(analytics=[item])
            for item in state.analytics
        }


def _fees_table(trades: list[TradeStat]) -> Table:
    net = [t.net for t in trades]
    gross = [t.gross for t in trades]
    fees = [t.fees for t in trades]
    avg_net, std_net, _ = _stats(net)
    avg_gross, std_gross, _ = _stats(gross)
    avg_fee, std_fee, _ = _stats(fees)
    total_gross = sum(gross)
    total_fees = sum(fees)
    return {
        "std_net_pnl": std_net,
        "total_fees_paid": total_fees,
        "overall_pnl_without_fees": total_gross,
        "total_fees_as_pct_of_pnl": _pct(total_fees, abs(total_gross)),
        "overall_pnl_with_fees": sum(net),
        "avg_taker_fee": avg_fee,
        "std_gross_pnl": std_gross,
        "avg_net_pnl": avg_net,
        "biggest_net_loss": min(net, default=0.0),
        "biggest_net_gain": max(net, default=0.0),
        "avg_gross_pnl": avg_gross,
        "std_taker_fee": std_fee,
    }


def _winners_table(trades: list[TradeStat]) -> Table:
    winners = [t for t in trades if t.net > 0]
    losers = [t for t in trades if t.net <= 0]
    table: Table = {"win_rate": _pct(len(winners), len(trades))}
    for label, group in (("winners", winners), ("losers", losers)):
        for metric, values in (
            ("net_pnl", [t.net for t in group]),
            ("notional", [t.notional for t in group]),
            ("holding_period", [t.hold_mins for t in group]),
        ):
            mean, std, _ = _stats(values)
            table[f"avg_{label}_{metric}"] = mean
            table[f"std_{label}_{metric}"] = std
    return table


def _signals_table(stats: TraderStats) -> Table:
    counts = {kind: stats.counts.get(kind, 0) for kind in ("long", "short", "hold", "close")}
    total = sum(counts.values())
    table: Table = {f"num_{kind}_signals": n for kind, n in counts.items()}
    table["total_signals"] = total
    for kind, n in counts.items():
        table[f"{kind}_signal_pct"] = _pct(n, total)
    mean, std, median = _counter_stats(_merge(list(stats.confidence.values())))
    table.update(avg_confidence=mean, std_confidence=std, median_confidence=median)
    for kind in counts:
        mean, std, _ = _counter_stats(stats.confidence.get(kind, {}))
        table[f"avg_confidence_{kind}"] = mean
        table[f"std_confidence_{kind}"] = std
    mean, std, median = _counter_stats(_merge(list(stats.leverage.values())))
    table.update(avg_leverage=mean, std_leverage=std, median_leverage=median)
    for kind in ("long", "short"):
        mean, std, _ = _counter_stats(stats.leverage.get(kind, {}))
        table[f"avg_leverage_{kind}"] = mean
        table[f"std_leverage_{kind}"] = std
    table["long_short_ratio"] = counts["long"] / counts["short"] if counts["short"] else 0.0
    minutes = dict(stats.minutes)
    open_span = (stats.updated_at - stats.exposure_since) / 60
    minutes[stats.exposure_kind] = minutes.get(stats.exposure_kind, 0.0) + max(0.0, open_span)
    whole = sum(minutes.values())
    for kind in ("long", "short", "flat"):
        table[f"mins_{kind}_combined"] = minutes.get(kind, 0.0)
        table[f"pct_mins_{kind}_combined"] = _pct(minutes.get(kind, 0.0), whole)
    return table


def _longs_shorts_table(trades: list[TradeStat]) -> Table:
    longs = [t for t in trades if t.long]
    shorts = [t for t in trades if not t.long]
    table: Table = {
        "num_long_trades": len(longs),
        "num_short_trades": len(shorts),
        "long_short_trades_ratio": len(longs) / len(shorts) if shorts else 0.0,
    }
    for label, group in (("longs", longs), ("shorts", shorts)):
        for metric, values in (
            ("net_pnl", [t.net for t in group]),
            ("notional", [t.notional for t in group]),
            ("holding_period", [t.hold_mins for t in group]),
        ):
            mean, std, _ = _stats(values)
            table[f"avg_{label}_{metric}"] = mean
            table[f"std_{label}_{metric}"] = std
    return table


def _overview_table(stats: TraderStats) -> Table:
    trades = stats.trades
    hold_mean, hold_std, hold_median = _stats([t.hold_mins for t in trades])
    size_mean, size_std, size_median = _stats([t.notional for t in trades])
    pct_mean, pct_std, _ = _stats([t.portfolio_pct for t in trades])
    lev_mean, _, lev_median = _counter_stats(_merge(list(stats.leverage.values())))
    return {
        "total_trades": len(trades),
        "avg_holding_period_mins": hold_mean,
        "median_holding_period_mins": hold_median,
        "std_holding_period_mins": hold_std,
        "avg_size_of_trade_notional": size_mean,
        "median_size_of_trade_notional": size_median,
        "std_size_of_trade_notional": size_std,
        "avg_size_of_trade_portfolio_pct": pct_mean,
        "std_size_of_trade_portfolio_pct": pct_std,
        "avg_convo_leverage": lev_mean,
        "median_convo_leverage": lev_median,
        "avg_take_profit_distance_pct": _stats([t.tp_pct for t in trades if t.tp_pct])[0],
        "avg_stop_loss_distance_pct": _stats([t.sl_pct for t in trades if t.sl_pct])[0],
    }


def _invocation_table(stats: TraderStats) -> Table:
    gaps = stats.gaps
    return {
        "num_invocations": stats.invocations,
        "avg_invocation_break_mins": gaps.mean,
        "std_invocation_break_mins": gaps.std(),
        "min_invocation_break_mins": gaps.low,
        "max_invocation_break_mins": gaps.high,
        "total_tokens": stats.tokens,
        "total_cost_usd": stats.cost_usd,
        "avg_cost_per_invocation_usd": stats.cost_usd / stats.invocations
        if stats.invocations
        else 0.0,
    }
