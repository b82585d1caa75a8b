"""The nine nof1 routes over the views of a 120-minute offline arena run."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from application.leases import Lease
from infrastructure import bootstrap
from infrastructure.bootstrap import LoadedConfig
from interfaces.http.app import LeaseBoard, create_app
from tests.support.arena import ROUTES

TRADERS = ("ema-cross", "random-walk", "btc-hold")
BASELINE = "buynhold_btc"
COINS = {"BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"}
ALLOCATION = 3000.0  # 30 % of the 10 000 USD arena, per trader (etc/manager.yaml)
CONVERSATIONS_PER_TRADER = 30  # etc/nof0.yaml Projections.ConversationsPerTrader


def get_json(client: Any, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    body: dict[str, Any] = response.json()
    return body


def total_positions(body: dict[str, Any]) -> int:
    return sum(len(entry["positions"]) for entry in body["accountTotals"])


# -- every route -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ROUTES)
def test_route_answers_200_with_server_time_in_ms(client: Any, url: str) -> None:
    before = int(time.time() * 1000)
    response = client.get(url)
    after = int(time.time() * 1000)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    server_time = response.json()["serverTime"]
    assert type(server_time) is int
    assert before - 1000 <= server_time <= after + 1000


@pytest.mark.parametrize("url", [*ROUTES, "/api/analytics/random-walk", "/healthz"])
def test_no_response_leaks_the_view_state(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    # The view files hold their position and rebuild state under "_view"; it stays internal.
    assert "_view" not in response.text
    assert "row_index" not in response.text
    assert "portfolio_v1" not in response.text


def test_healthz_answers_ok_from_the_json_files(client: Any) -> None:
    body = get_json(client, "/healthz")
    assert body["status"] == "ok"
    assert body["views"] == "ok (json)"
    assert body["redis"] == "not configured"
    assert type(body["serverTime"]) is int


def test_openapi_document_lists_the_nine_routes(client: Any) -> None:
    document = get_json(client, "/schema/openapi.json")
    paths = {re.sub(r"\{[^}]+\}", "{}", path) for path in document["paths"]}
    expected = {re.sub(r"/ema-cross$", "/{}", url) for url in ROUTES}
    assert len(expected) == 9
    assert expected <= paths, expected - paths
    for path, item in document["paths"].items():
        if path.startswith("/api/control/") and path != "/api/control":
            assert set(item) == {"post"}, path  # operator actions, behind bearer tokens
        elif path.startswith("/api/"):
            assert set(item) == {"get"}, path  # the views are read-only


# -- account-totals ----------------------------------------------------------------------


def test_account_totals_has_one_row_per_trader_per_hour_plus_the_baseline(client: Any) -> None:
    body = get_json(client, "/api/account-totals")
    rows = body["accountTotals"]
    keys = [(row["model_id"], row["since_inception_hourly_marker"]) for row in rows]
    assert len(keys) == len(set(keys)), "duplicate rows"
    # 120 simulated minutes: hourly markers 0 and 1.
    assert set(keys) == {(model, hour) for model in (*TRADERS, BASELINE) for hour in (0, 1)}
    assert body["lastHourlyMarkerRead"] == 1
    for row in rows:
        assert row["id"] == f"{row['model_id']}_{row['since_inception_hourly_marker']}"
        assert row["since_inception_minute_marker"] // 60 == row["since_inception_hourly_marker"]
        for coin, position in row["positions"].items():
            assert coin in COINS
            assert position["symbol"] == coin
    # Every trader (and the baseline) holds something at the end of the run.
    assert all(row["positions"] for row in rows if row["since_inception_hourly_marker"] == 1)


@pytest.mark.parametrize(("marker", "count"), [(0, 8), (1, 4), (2, 0), (10_000, 0)])
def test_last_hourly_marker_returns_rows_at_or_after_it(
    client: Any, marker: int, count: int
) -> None:
    everything = get_json(client, "/api/account-totals")["accountTotals"]
    body = get_json(client, f"/api/account-totals?lastHourlyMarker={marker}")
    rows = body["accountTotals"]
    assert len(rows) == count
    assert all(row["since_inception_hourly_marker"] >= marker for row in rows)
    assert rows == [row for row in everything if row["since_inception_hourly_marker"] >= marker]
    # lastHourlyMarkerRead is the newest marker of the view, what the client polls with next.
    assert body["lastHourlyMarkerRead"] == max(
        row["since_inception_hourly_marker"] for row in everything
    )
    assert body["lastHourlyMarkerRead"] == 1


# -- leaderboard and since-inception ------------------------------------------------------


def test_leaderboard_ranks_the_three_traders_by_equity(client: Any) -> None:
    board = get_json(client, "/api/leaderboard")["leaderboard"]
    assert sorted(entry["id"] for entry in board) == sorted(TRADERS)
    equities = [entry["equity"] for entry in board]
    assert equities == sorted(equities, reverse=True)
    for entry in board:
        assert entry["num_trades"] == entry["num_wins"] + entry["num_losses"]
        assert entry["win_dollars"] >= 0
        assert entry["lose_dollars"] <= 0
        assert entry["return_pct"] == pytest.approx((entry["equity"] / ALLOCATION - 1) * 100)
    assert any(entry["num_trades"] > 0 for entry in board)


def test_leaderboard_agrees_with_trades_and_the_latest_account_rows(client: Any) -> None:
    board = {e["id"]: e for e in get_json(client, "/api/leaderboard")["leaderboard"]}
    trades = get_json(client, "/api/trades")["trades"]
    rows = get_json(client, "/api/account-totals?lastHourlyMarker=1")["accountTotals"]
    latest = {row["model_id"]: row for row in rows}
    per_model = Counter(trade["model_id"] for trade in trades)
    for model in TRADERS:
        assert board[model]["num_trades"] == per_model[model]
        assert board[model]["equity"] == pytest.approx(latest[model]["dollar_equity"], abs=1e-6)
        wins = sum(
            t["realized_net_pnl"]
            for t in trades
            if t["model_id"] == model and t["realized_net_pnl"] > 0
        )
        assert board[model]["win_dollars"] == pytest.approx(wins, abs=1e-6)


def test_since_inception_has_one_row_per_trader_and_the_btc_baseline(client: Any) -> None:
    values = get_json(client, "/api/since-inception-values")["sinceInceptionValues"]
    models = [row["model_id"] for row in values]
    assert sorted(models) == sorted([*TRADERS, BASELINE])
    board = {e["id"]: e["equity"] for e in get_json(client, "/api/leaderboard")["leaderboard"]}
    ids = set()
    for row in values:
        ids.add(row["id"])
        assert type(row["num_invocations"]) is int
        if row["model_id"] == BASELINE:
            assert row["num_invocations"] == 0
        else:
            assert row["num_invocations"] > 0
            assert row["nav_since_inception"] == pytest.approx(board[row["model_id"]])
    assert len(ids) == len(values)


# -- crypto-prices and positions ------------------------------------------------------------


def test_crypto_prices_cover_the_six_coins(client: Any) -> None:
    prices = get_json(client, "/api/crypto-prices")["prices"]
    assert set(prices) == COINS
    for coin, price in prices.items():
        assert price["symbol"] == coin
        assert price["price"] > 0
        assert type(price["timestamp"]) is int
        assert price["timestamp"] > 10**12  # unix milliseconds


def test_positions_list_each_trader_with_its_open_positions(client: Any) -> None:
    body = get_json(client, "/api/positions")
    assert [entry["model_id"] for entry in body["accountTotals"]] == list(TRADERS)
    latest = {
        row["model_id"]: row
        for row in get_json(client, "/api/account-totals?lastHourlyMarker=1")["accountTotals"]
    }
    for entry in body["accountTotals"]:
        assert set(entry["positions"]) == set(latest[entry["model_id"]]["positions"])
        for coin, position in entry["positions"].items():
            assert position["symbol"] == coin
            assert position["quantity"] != 0
    assert total_positions(body) >= 4


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 100_000])
def test_positions_limit_caps_the_number_of_positions(client: Any, limit: int) -> None:
    everything = get_json(client, "/api/positions")
    total = total_positions(everything)
    assert total >= 4
    body = get_json(client, f"/api/positions?limit={limit}")
    assert total_positions(body) == min(limit, total)
    # Same traders, in the same order; the positions kept are the first ones.
    assert [e["model_id"] for e in body["accountTotals"]] == [
        e["model_id"] for e in everything["accountTotals"]
    ]
    kept = [
        (e["model_id"], coin, position)
        for e in body["accountTotals"]
        for coin, position in e["positions"].items()
    ]
    first = [
        (e["model_id"], coin, position)
        for e in everything["accountTotals"]
        for coin, position in e["positions"].items()
    ][: min(limit, total)]
    assert kept == first


# -- analytics ----------------------------------------------------------------------------


def test_analytics_has_one_entry_per_trader(client: Any) -> None:
    analytics = get_json(client, "/api/analytics")["analytics"]
    assert sorted(item["model_id"] for item in analytics) == sorted(TRADERS)
    for item in analytics:
        assert item["id"] == item["model_id"]


@pytest.mark.parametrize("model", TRADERS)
def test_analytics_of_one_trader_is_a_one_element_list(client: Any, model: str) -> None:
    body = get_json(client, f"/api/analytics/{model}")
    assert isinstance(body["analytics"], list)
    assert len(body["analytics"]) == 1
    (mine,) = body["analytics"]
    assert mine["model_id"] == model
    assert mine["id"] == model
    everyone = get_json(client, "/api/analytics")["analytics"]
    (expected,) = [item for item in everyone if item["model_id"] == model]
    assert mine == expected


def test_analytics_signal_counts_add_up(client: Any) -> None:
    for item in get_json(client, "/api/analytics")["analytics"]:
        signals = item["signals_breakdown_table"]
        parts = ("long", "short", "hold", "close")
        assert sum(signals[f"num_{p}_signals"] for p in parts) == signals["total_signals"]
        overview = item["overall_trades_overview_table"]
        sides = item["longs_shorts_breakdown_table"]
        assert overview["total_trades"] == sides["num_long_trades"] + sides["num_short_trades"]


# -- trades -------------------------------------------------------------------------------


def test_trades_money_is_consistent(client: Any) -> None:
    trades = get_json(client, "/api/trades")["trades"]
    assert len(trades) >= 5
    for t in trades:
        where = t["id"]
        assert t["realized_net_pnl"] == pytest.approx(
            t["entry_closed_pnl"] + t["exit_closed_pnl"], abs=1e-9
        ), where
        assert t["total_commission_dollars"] == pytest.approx(
            t["entry_commission_dollars"] + t["exit_commission_dollars"], abs=1e-9
        ), where
        # nof1: the entry fill's closed pnl is minus its fee.
        assert t["entry_closed_pnl"] == pytest.approx(-t["entry_commission_dollars"], abs=1e-9)
        assert t["realized_gross_pnl"] == pytest.approx(
            (t["exit_price"] - t["entry_price"]) * t["quantity"], abs=1e-6
        ), where
        assert t["entry_commission_dollars"] > 0
        assert t["exit_commission_dollars"] > 0


def test_trades_are_well_formed(client: Any) -> None:
    trades = get_json(client, "/api/trades")["trades"]
    assert {t["model_id"] for t in trades} <= set(TRADERS)
    assert len({t["id"] for t in trades}) == len(trades)
    for t in trades:
        assert t["id"].startswith(f"{t['model_id']}_")
        assert t["trade_type"] == t["side"]
        assert t["side"] in ("long", "short")
        assert (t["quantity"] > 0) == (t["side"] == "long")
        assert t["entry_sz"] == pytest.approx(abs(t["quantity"]))
        assert t["exit_sz"] == pytest.approx(abs(t["quantity"]))
        assert t["symbol"] in COINS
        assert t["exit_time"] >= t["entry_time"]
        assert t["trade_id"] == (
            f"{t['entry_time']}_{t['symbol']}_{t['exit_time']}_{t['model_id']}"
        )


# -- conversations --------------------------------------------------------------------------


def test_conversations_carry_prompt_response_and_summary(client: Any) -> None:
    conversations = get_json(client, "/api/conversations")["conversations"]
    assert conversations
    for item in conversations:
        assert item["model_id"] in TRADERS
        assert item["id"].startswith(f"{item['model_id']}_")
        assert isinstance(item["user_prompt"], str)
        assert item["user_prompt"].strip()
        assert isinstance(item["cot_trace_summary"], str)
        assert item["cot_trace_summary"].strip()
        response = item["llm_response"]
        assert isinstance(response, dict)
        assert response
        for coin, decision in response.items():
            assert coin in COINS
            assert decision["coin"] == coin
            assert decision["signal"] in ("buy_to_enter", "sell_to_enter", "hold", "close")
            assert isinstance(decision["justification"], str)


def test_conversations_keep_the_latest_per_trader(client: Any) -> None:
    conversations = get_json(client, "/api/conversations")["conversations"]
    invocations = {
        row["model_id"]: row["num_invocations"]
        for row in get_json(client, "/api/since-inception-values")["sinceInceptionValues"]
    }
    counts = Counter(item["model_id"] for item in conversations)
    for model in TRADERS:
        assert counts[model] == min(CONVERSATIONS_PER_TRADER, invocations[model]), model


# -- nof0's own status route ---------------------------------------------------------------


def test_status_shows_every_trader_and_the_shared_venue_account(client: Any) -> None:
    response = client.get("/api/status")
    assert response.status_code == 200, response.text[:300]
    assert "_view" not in response.text
    body = response.json()
    assert type(body["serverTime"]) is int
    rows = {row["model_id"]: row for row in body["traders"]}
    assert set(rows) == set(TRADERS)
    for row in rows.values():
        assert row["cycles"] > 0
        assert row["last_cycle_at"] is not None
        assert row["paused"] is False
        assert row["llm_failures"] == 0
    (venue,) = body["venues"]
    assert venue["provider"] == "paper_trading"  # the provider id in exchange.yaml
    assert venue["address"].startswith("0x")
    assert venue["findings"] == []  # the books followed the venue all along
    assert venue["transfers"] == []  # funded before the arena registered it


def test_status_without_leases_names_no_engine(client: Any) -> None:
    body = client.get("/api/status").json()
    assert body["engine"] is None
    assert body["leases"] is None
    assert body["leasesError"] is None


def _status_with(config: LoadedConfig, board: LeaseBoard) -> Any:
    from litestar.testing import TestClient

    app = create_app(lambda: bootstrap.build_readers(config), metrics=False, leases=board)
    with TestClient(app) as test_client:
        response = test_client.get("/api/status")
    assert response.status_code == 200, response.text[:300]
    return response.json()


def test_status_says_which_engine_holds_which_trader(arena_config: LoadedConfig) -> None:
    held = [
        Lease("engine:host-a", "host-a", 1, 14.04),
        Lease("trader:ema-cross", "host-b", 3, 9.5),
        Lease("venue:sim", "host-a", 1, 12.0),
    ]
    body = _status_with(arena_config, LeaseBoard(owner="host-a", live=lambda: held))
    assert body["engine"] == "host-a"
    assert body["leases"] == [
        {"name": "engine:host-a", "owner": "host-a", "token": 1, "expiresInS": 14.0},
        {"name": "trader:ema-cross", "owner": "host-b", "token": 3, "expiresInS": 9.5},
        {"name": "venue:sim", "owner": "host-a", "token": 1, "expiresInS": 12.0},
    ]
    assert body["traders"], "the views are still there"


def test_status_names_an_unreadable_lease_table_and_still_answers(
    arena_config: LoadedConfig,
) -> None:
    def down() -> list[Lease]:
        raise OperationalError("connection refused (password=hunter2)")

    body = _status_with(arena_config, LeaseBoard(owner="host-a", live=down))
    assert body["leases"] is None
    assert body["leasesError"] == "the lease table could not be read: OperationalError"
    assert "hunter2" not in str(body)
    assert body["traders"]


# -- statistics ---------------------------------------------------------------------------


def test_statistics_give_every_trader_intervals_and_are_kept_between_requests(
    client: Any,
) -> None:
    body = get_json(client, "/api/statistics")
    assert sorted(t["model_id"] for t in body["traders"]) == sorted(TRADERS)
    assert body["baseline"]["model_id"] == "buynhold_btc"
    assert body["confidence"] == 0.95
    for trader in body["traders"]:
        for name in ("return", "sharpe", "sortino"):
            assert set(trader[name]) == {"estimate", "low", "high"}
        assert trader["against_btc"] in {"better", "worse", "not distinguishable"}
    assert body["computedAt"] <= body["serverTime"]
    again = get_json(client, "/api/statistics")
    assert again["computedAt"] == body["computedAt"]  # kept, not resampled per request
    assert client.app.state.statistics.computes == 1
