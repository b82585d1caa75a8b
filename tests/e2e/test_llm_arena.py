"""LLM traders in the arena through the real SDK clients and local wire-compatible fakes.

Issue 4's acceptance: a trader on an OpenAI-compatible endpoint trades, and its prompts,
raw answers, tokens and cost are visible through the API; with the primary failing the
fallback decides and the switch is recorded; with the budget exhausted cycles are skipped
with reason ``budget`` and no order is sent.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.arena import OfflineArena, api_client
from tests.support.fake_llm import FakeLLMServer, RecordedRequest, Reply, Status
from tests.support.workspace import Workspace

API_KEY = "sk-test-do-not-log-7c1e"
PRICE_IN, PRICE_OUT = Decimal("2.5"), Decimal("10")


def strategy(request: RecordedRequest) -> Reply:
    """A toy model that reads the prompt it is sent: long BTC when flat, close when held."""
    messages = request.body["messages"]
    assert messages[0]["role"] == "system"
    user = messages[-1]["content"]
    price = float(re.search(r"### BTC\ncurrent_price = ([0-9.]+)", user).group(1))  # type: ignore[union-attr]
    if "'symbol': 'BTC'" in user:
        answer = {"BTC": {"signal": "close", "justification": "take the move"}}
    else:
        answer = {
            "BTC": {
                "signal": "buy_to_enter",
                "quantity": round(1500 / price, 5),
                "leverage": 5,
                "profit_target": round(price * 1.04, 1),
                "stop_loss": round(price * 0.99, 1),
                "invalidation_condition": "4h close below the stop",
                "confidence": 0.8,
                "risk_usd": 15,
                "justification": "test entry",
            }
        }
    return Reply(
        text=json.dumps(answer),
        tokens_in=2000,
        tokens_out=300,
        reasoning="price read from the prompt",
    )


def llm_workspace(
    root: Path,
    models: dict[str, dict[str, Any]],
    trader_model: str,
    fallbacks: list[str],
    daily_tokens: int = 10_000_000,
) -> Workspace:
    ws = Workspace(root / "arena")
    ws.set("llm.yaml", ("api_key",), API_KEY)
    ws.set("llm.yaml", ("models",), models)
    ws.set("llm.yaml", ("budget", "daily_token_limit"), daily_tokens)
    ws.set(
        "llm.yaml",
        ("budget", "cost_per_million_tokens"),
        {name: {"input": float(PRICE_IN), "output": float(PRICE_OUT)} for name in models},
    )
    ws.set("llm.yaml", ("router",), {"failure_threshold": 2, "success_window": 5, "probe_every": 3})
    ws.set("llm.yaml", ("timeout",), "5s")
    ws.set("llm.yaml", ("max_retries",), 0)
    ws.set("manager.yaml", ("traders", 1, "model"), trader_model)
    ws.set("manager.yaml", ("traders", 1, "fallback_models"), fallbacks)
    # The LLM trader trades BTC, which btc-hold holds on the shared paper account (one
    # trader per coin per account): give it an account of its own.
    ws.set(
        "exchange.yaml",
        ("providers", "paper_llm"),
        {
            "type": "sim",
            "timeout": "5s",
            "retry": {"max_attempts": 3, "backoff": "200ms", "max_backoff": "2s"},
            "capabilities": ["market_orders", "reduce_only", "trigger_orders", "leverage"],
            "fund_usdc": 3000,
        },
    )
    ws.set("manager.yaml", ("traders", 1, "exchange_provider"), "paper_llm")
    return ws


def model(url: str, priority: int, tier: str = "medium") -> dict[str, Any]:
    return {
        "provider": "openai",
        "model_name": f"fake-{priority}",
        "base_url": url,
        "temperature": 0.2,
        "max_completion_tokens": 1024,
        "priority": priority,
        "cost_tier": tier,
    }


def conversations_of(client: Any, trader: str) -> list[dict[str, Any]]:
    items = client.get("/api/conversations").json()["conversations"]
    return [c for c in items if c["model_id"] == trader]


def test_an_llm_trader_trades_and_its_costs_are_visible(tmp_path: Path) -> None:
    with FakeLLMServer(responder=strategy) as server:
        ws = llm_workspace(tmp_path, {"fake-gpt": model(server.url_openai, 1)}, "fake-gpt", [])
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        arena.run_sync(minutes=60)
        requests = server.requests
    assert len(requests) >= 15
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in requests)
    first_prompt = requests[0].body["messages"][-1]["content"]
    assert "ALL PRICE AND SIGNAL SERIES ARE ORDERED OLDEST → NEWEST" in first_prompt
    assert "### DOGE" in first_prompt

    with api_client(arena.config) as client:
        items = conversations_of(client, "random-walk")
        trades = [
            t for t in client.get("/api/trades").json()["trades"] if t["model_id"] == "random-walk"
        ]
        analytics = client.get("/api/analytics/random-walk").json()["analytics"][0]
        log = (arena.config.data_dir / "events.sqlite3").read_bytes()
    cost_per_call = (2000 * PRICE_IN + 300 * PRICE_OUT) / 1_000_000
    assert items
    newest = items[0]
    assert newest["model"] == "fake-gpt"
    assert (newest["tokens_in"], newest["tokens_out"]) == (2000, 300)
    assert Decimal(str(newest["cost_usd"])) == cost_per_call
    assert newest["raw_response"].startswith("<think>price read from the prompt</think>")
    assert newest["cot_trace"] == "price read from the prompt"
    assert "BTC" in newest["llm_response"]
    assert "current_price" in newest["user_prompt"]
    assert trades, "the LLM trader opened and closed positions"
    invocations = analytics["invocation_breakdown_table"]
    calls = invocations["num_invocations"]
    assert Decimal(str(invocations["total_cost_usd"])) == pytest.approx(
        cost_per_call * calls, abs=Decimal("0.000001")
    )
    assert invocations["total_tokens"] == 2300 * calls
    assert API_KEY.encode() not in log  # the key is never recorded


def test_with_the_primary_failing_the_fallback_decides_and_the_switch_is_recorded(
    tmp_path: Path,
) -> None:
    with (
        FakeLLMServer(default=Status(503, message="overloaded")) as broken,
        FakeLLMServer(responder=strategy) as healthy,
    ):
        models = {
            "primary": model(broken.url_openai, 1, "high"),
            "backup": model(healthy.url_openai, 2, "low"),
        }
        ws = llm_workspace(tmp_path, models, "primary", ["backup"])
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        arena.run_sync(minutes=45)
    events = list(arena.engine.app.trader_events("random-walk"))
    kinds = [type(e).__name__ for e in events]
    assert "ModelSwitched" in kinds
    switch = next(e for e in events if type(e).__name__ == "ModelSwitched")
    assert (switch.from_model, switch.to_model) == ("primary", "backup")
    assert "consecutive failures" in switch.reason
    attempts = [e for e in events if type(e).__name__ == "ModelAttemptFailed"]
    assert attempts
    assert {a.reason for a in attempts} == {"server_error"}
    assert "LLMFailed" not in kinds  # every cycle was decided by the fallback
    responded = [e for e in events if type(e).__name__ == "LLMResponded"]
    assert {e.model for e in responded} == {"backup"}
    assert arena.engine.app.get_trader("random-walk").model == "backup"
    with api_client(arena.config) as client:
        assert {c["model"] for c in conversations_of(client, "random-walk")} == {"backup"}


def test_with_the_budget_exhausted_cycles_are_skipped_and_no_order_is_sent(
    tmp_path: Path,
) -> None:
    with FakeLLMServer(responder=strategy) as server:
        # 2300 tokens a call; a 5000-token limit with the hard stop at 120 %: 3 calls.
        ws = llm_workspace(
            tmp_path, {"fake-gpt": model(server.url_openai, 1)}, "fake-gpt", [], daily_tokens=5000
        )
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        arena.run_sync(minutes=60)
        calls = server.request_count
    assert calls == 3
    events = list(arena.engine.app.trader_events("random-walk"))
    skipped = [e for e in events if type(e).__name__ == "CycleSkipped"]
    assert len(skipped) >= 10
    assert {e.reason for e in skipped} == {"budget"}
    # After the budget ran out, no decision sends an order; only protective exits (a stop or
    # target already on the books) may still close a position.
    first_skip = next(i for i, e in enumerate(events) if type(e).__name__ == "CycleSkipped")
    later_orders = [e for e in events[first_skip:] if type(e).__name__ == "OrderPlaced"]
    assert all(order.reason in ("stop", "target") for order in later_orders)
    assert "LLMResponded" not in [type(e).__name__ for e in events[first_skip:]]
    usage = json.loads((arena.config.data_dir / "llm_budget.json").read_text())
    assert usage["tokens"] == 3 * 2300
    assert usage["calls"] == 3
    budget_alerts = [a for a in arena.engine.alerts.sent if a[1] == "budget"]
    assert len(budget_alerts) == 1
