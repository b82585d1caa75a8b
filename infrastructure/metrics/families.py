"""Every metric family the engine exports on ``/metrics``, on a registry of its own.

Names follow Prometheus' conventions (``nof0_`` prefix, base units, ``_total`` counters).
Labels are bounded: traders, models, venues, markets and coins come from the
configuration, and reasons, rules and endpoints from closed sets (anything else is folded
into ``other``), so a misbehaving venue or model cannot grow the series without bound.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class EngineMetrics:
    """The families, created on ``registry`` (a fresh one per engine unless given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        # -- LLM, by model
        self.llm_calls = Counter(
            "nof0_llm_calls",
            "Model answers by outcome (ok, cached, failed).",
            ["model", "outcome"],
            registry=r,
        )
        self.llm_failures = Counter(
            "nof0_llm_failures",
            "Failed model attempts by typed reason.",
            ["model", "reason"],
            registry=r,
        )
        self.llm_latency = Histogram(
            "nof0_llm_latency_seconds",
            "Model latency per attempt.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "nof0_llm_tokens",
            "Tokens by direction (input, output).",
            ["model", "direction"],
            registry=r,
        )
        self.llm_cost = Counter(
            "nof0_llm_cost_usd", "Model cost in US dollars.", ["model"], registry=r
        )
        # -- traders
        self.decisions = Counter(
            "nof0_decisions", "Decision cycles that asked for a decision.", ["trader"], registry=r
        )
        self.decision_latency = Histogram(
            "nof0_decision_latency_seconds",
            "A decision cycle's wall time, model included.",
            ["trader"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cycles_skipped = Counter(
            "nof0_cycles_skipped",
            "Cycles skipped by typed reason.",
            ["trader", "reason"],
            registry=r,
        )
        self.risk_rejections = Counter(
            "nof0_risk_rejections",
            "Decisions the risk desk refused, by rule.",
            ["trader", "rule"],
            registry=r,
        )
        self.breaker_trips = Counter(
            "nof0_breaker_trips", "Breakers tripped, by rule.", ["trader", "rule"], registry=r
        )
        self.open_positions = Gauge(
            "nof0_open_positions", "Open positions.", ["trader"], registry=r
        )
        self.margin_usage = Gauge(
            "nof0_margin_usage_ratio", "Margin used over equity.", ["trader"], registry=r
        )
        self.equity = Gauge(
            "nof0_equity_usd", "Equity at the newest marks.", ["trader"], registry=r
        )
        self.sharpe = Gauge(
            "nof0_sharpe_ratio", "Sharpe ratio of hourly returns.", ["trader"], registry=r
        )
        self.paused = Gauge(
            "nof0_trader_paused", "1 when the trader is paused.", ["trader"], registry=r
        )
        # -- exchanges, by venue (exchange provider)
        self.exchange_latency = Histogram(
            "nof0_exchange_request_seconds",
            "Venue request latency by endpoint.",
            ["venue", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.exchange_failures = Counter(
            "nof0_exchange_request_failures",
            "Venue requests without an answer, by error.",
            ["venue", "endpoint", "error"],
            registry=r,
        )
        self.orders = Counter(
            "nof0_orders",
            "Order outcomes (placed, filled, rejected, canceled).",
            ["venue", "outcome"],
            registry=r,
        )
        self.order_rejections = Counter(
            "nof0_order_rejections",
            "Orders the venue or the desk refused, by reason.",
            ["venue", "reason"],
            registry=r,
        )
        self.nonce_conflicts = Counter(
            "nof0_nonce_conflicts",
            "Orders the venue refused for their nonce.",
            ["venue"],
            registry=r,
        )
        self.exchange_failure_ratio = Gauge(
            "nof0_exchange_failure_ratio",
            "Failed share of venue requests in the health window.",
            ["venue"],
            registry=r,
        )
        self.exchange_paper = Gauge(
            "nof0_exchange_paper",
            "1 while the venue's traders trade on paper.",
            ["venue"],
            registry=r,
        )
        # -- market data, by market provider
        self.market_lag = Gauge(
            "nof0_market_data_lag_seconds",
            "Age of the newest data in the last snapshot.",
            ["market", "coin"],
            registry=r,
        )
        self.market_missing = Counter(
            "nof0_market_data_missing",
            "Cycles skipped for stale or missing market data.",
            ["market", "reason"],
            registry=r,
        )
        self.market_switches = Counter(
            "nof0_market_provider_switches",
            "Changes of the provider serving a market.",
            ["market"],
            registry=r,
        )
        # -- storage
        self.store_rtt = Gauge(
            "nof0_event_store_rtt_seconds",
            "Round trip of a probe query to the event store.",
            registry=r,
        )
        self.store_slow = Counter(
            "nof0_event_store_slow_queries", "Probe queries slower than the threshold.", registry=r
        )
        self.store_pool = Gauge(
            "nof0_event_store_pool_connections",
            "Event store connections by state.",
            ["state"],
            registry=r,
        )
        self.store_up = Gauge(
            "nof0_event_store_up", "1 when the event store answered the last probe.", registry=r
        )
        self.redis_rtt = Gauge("nof0_redis_rtt_seconds", "Round trip of a Redis PING.", registry=r)
        self.redis_up = Gauge("nof0_redis_up", "1 when Redis answered the last PING.", registry=r)
        self.events = Gauge(
            "nof0_event_store_head", "Position of the newest stored event.", registry=r
        )
        # -- projections
        self.projection_lag = Gauge(
            "nof0_projection_lag_events",
            "Events a view is behind the store.",
            ["store", "view"],
            registry=r,
        )
        self.collected = Gauge(
            "nof0_metrics_collected_timestamp_seconds",
            "When the metrics were last collected.",
            registry=r,
        )
