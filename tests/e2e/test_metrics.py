"""``/metrics`` after an arena has traded: every family with live values, and the Grafana
board names only metrics that the endpoint really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from infrastructure import bootstrap
from interfaces.http.app import create_app
from tests.e2e.test_llm_arena import llm_workspace, model, strategy
from tests.support.arena import REPO, OfflineArena
from tests.support.fake_llm import FakeLLMServer, Status

DASHBOARD = REPO / "etc" / "grafana" / "nof0.json"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(arena: OfflineArena) -> tuple[str, Samples]:
    app = create_app(
        lambda: bootstrap.build_readers(arena.config),
        engine_metrics=arena.engine.metrics.registry,
    )
    with TestClient(app) as client:
        # A view route answered from the encoded views, and one through the framework.
        assert client.get("/api/leaderboard").status_code == 200
        assert client.get("/api/positions?limit=5").status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    matching = [v for lab, v in samples.get(name, []) if labels.items() <= lab.items()]
    assert matching, f"{name}{labels} not exported"
    return sum(matching)


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> tuple[OfflineArena, str, Samples]:
    root = tmp_path_factory.mktemp("metrics")
    with (
        FakeLLMServer(default=Status(503, message="overloaded")) as broken,
        FakeLLMServer(responder=strategy) as healthy,
    ):
        models = {
            "primary": model(broken.url_openai, 1, "high"),
            "backup": model(healthy.url_openai, 2, "low"),
        }
        ws = llm_workspace(root, models, "primary", ["backup"])
        arena = OfflineArena.open(root / "data", config_path=ws.main)
        collector = arena.engine.collector
        assert collector is not None
        collector.start()
        arena.run_sync(minutes=60)
    collector.collect()
    text, samples = scrape(arena)
    return arena, text, samples


def test_llm_families_count_calls_failures_tokens_and_cost_by_model(
    traded: tuple[OfflineArena, str, Samples],
) -> None:
    _, _, samples = traded
    ok = value(samples, "nof0_llm_calls_total", model="backup", outcome="ok")
    assert ok >= 5
    assert value(samples, "nof0_llm_calls_total", model="primary", outcome="failed") >= 1
    assert value(samples, "nof0_llm_failures_total", model="primary") >= 1
    assert value(samples, "nof0_llm_tokens_total", model="backup", direction="input") == 2000 * ok
    assert value(samples, "nof0_llm_tokens_total", model="backup", direction="output") == 300 * ok
    assert value(samples, "nof0_llm_cost_usd_total", model="backup") == pytest.approx(
        ok * (2000 * 2.5 + 300 * 10) / 1e6
    )
    assert value(samples, "nof0_llm_latency_seconds_count", model="backup") == ok


def test_trader_families_match_the_traders_state(traded: tuple[OfflineArena, str, Samples]) -> None:
    arena, _, samples = traded
    for config_id in ("btc-hold", "random-walk", "ema-cross"):
        trader = arena.engine.app.get_trader(config_id)
        account = trader.account(trader.marks)
        assert value(samples, "nof0_equity_usd", trader=config_id) == pytest.approx(
            float(account.equity)
        )
        assert value(samples, "nof0_open_positions", trader=config_id) == len(account.positions)
        assert value(samples, "nof0_trader_paused", trader=config_id) == 0
        assert value(samples, "nof0_decisions_total", trader=config_id) >= 1
        assert value(samples, "nof0_decision_latency_seconds_count", trader=config_id) >= 1
        assert 0 <= value(samples, "nof0_margin_usage_ratio", trader=config_id) < 1
        assert ("nof0_sharpe_ratio", config_id) in {
            (name, lab["trader"])
            for name, rows in samples.items()
            for lab, _ in rows
            if "trader" in lab
        }
    # btc-hold holds BTC from its first cycle
    assert value(samples, "nof0_open_positions", trader="btc-hold") == 1


def test_exchange_families_time_each_request_and_count_order_outcomes(
    traded: tuple[OfflineArena, str, Samples],
) -> None:
    _, _, samples = traded
    placed = value(samples, "nof0_orders_total", outcome="placed")
    assert placed >= 2
    assert value(samples, "nof0_orders_total", outcome="filled") >= 1
    assert (
        value(samples, "nof0_exchange_request_seconds_count", endpoint="exchange.order") >= placed
    )
    assert (
        value(samples, "nof0_exchange_request_seconds_count", endpoint="info.frontendOpenOrders")
        >= 1
    )
    assert value(samples, "nof0_exchange_failure_ratio", venue="paper_trading") == 0
    assert value(samples, "nof0_exchange_paper", venue="paper_trading") == 1


def test_market_storage_and_projection_families_are_live(
    traded: tuple[OfflineArena, str, Samples],
) -> None:
    arena, _, samples = traded
    lags = [v for lab, v in samples["nof0_market_data_lag_seconds"] if lab["coin"] == "BTC"]
    assert lags
    assert all(0 <= lag < 600 for lag in lags)
    assert value(samples, "nof0_event_store_up") == 1
    assert value(samples, "nof0_event_store_rtt_seconds") > 0
    assert value(samples, "nof0_event_store_head") == arena.engine.app.max_position()
    assert value(samples, "nof0_event_store_pool_connections", state="in_use") == 1
    lags = {lab["view"]: v for lab, v in samples["nof0_projection_lag_events"]}
    assert {"portfolio_v1", "trades_v1", "conversations_v1", "status_v1"} <= set(lags)
    assert all(lag == 0 for lag in lags.values())  # the views were brought up to date
    assert value(samples, "nof0_metrics_collected_timestamp_seconds") > 0
    assert value(samples, "nof0_api_requests_total") >= 1  # the API's own, same scrape
    assert (
        value(samples, "nof0_api_view_responses_total", path="/api/leaderboard", status_code="200")
        >= 1
    )


def test_every_grafana_panel_names_a_metric_that_metrics_exports(
    traded: tuple[OfflineArena, str, Samples],
) -> None:
    _, text, _ = traded
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 30
    for expr in exprs:
        names = re.findall(r"\bnof0_[a-z0-9_]+", expr)
        assert names, f"panel expression names no nof0 metric: {expr}"
        for name in names:
            base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
            assert name in families or base in families, f"{name} is not exported"


def test_a_board_naming_an_unknown_metric_would_fail_the_check(
    traded: tuple[OfflineArena, str, Samples],
) -> None:
    _, text, _ = traded
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    assert "nof0_llm_calls_total" in families
    assert not {"nof0_llm_cals_total", "nof0_llm_cals", "nof0_orders_placed"} & families


def test_no_exporter_means_no_collector(tmp_path: Path) -> None:
    from tests.support.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.set("manager.yaml", ("monitoring", "metrics_exporter"), "none")
    config = bootstrap.load_config(ws.main, data_dir=tmp_path / "d", env={})
    assert bootstrap.build_engine(config).collector is None
