"""SimVenue /info: every request type, its values, and its shape against the venue samples in
``shared/contracts/hyperliquid`` (same keys, same JSON types; skipped without ../shared)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infrastructure.simulator.engine import InfoRequestError, SimVenue
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BOB,
    ETH,
    HOUR,
    HOUR0,
    MIDS,
    SOL,
    T0,
    D,
    cloid,
    limit,
    one,
    place,
    prices,
    trigger,
    venue,
)

ALL_MIDS = {
    "BTC": "80000",
    "ETH": "2000",
    "SOL": "100",
    "BNB": "600",
    "DOGE": "0.2",
    "XRP": "2.5",
}
AGENT = "0x" + "c1" * 20
NULLABLE = frozenset({"premium", "midPx", "impactPxs", "liquidationPx", "tif", "cloid"})


def busy_venue() -> SimVenue:
    """A venue with a bit of everything: positions (cross and isolated), resting, trigger and
    bracket orders, fills with a cloid, funding, a named agent, candles."""
    sim = venue(mids=ALL_MIDS)
    sim.approve_agent(ALICE, AGENT, "bot", T0 + 86_400_000)
    sim.exchange(ALICE, {"type": "updateLeverage", "asset": SOL, "isCross": False, "leverage": 5})
    one(sim, limit(ETH, True, "2010", "1", "Ioc", cloid=cloid(1)))
    one(sim, limit(SOL, False, "99", "10", "Ioc"))
    one(sim, limit(ETH, True, "1990", "0.5", cloid=cloid(2)))
    one(sim, trigger(ETH, False, "1800", "1", "1900", "sl"))
    place(
        sim,
        limit(ETH, True, "1980", "0.5"),
        trigger(ETH, False, "2090", "0.5", "2100", "tp"),
        grouping="normalTpsl",
    )
    sim.advance(T0 + 30_000, prices({**ALL_MIDS, "ETH": "2004"}))
    sim.advance(HOUR0 + HOUR + 7, prices(ALL_MIDS), funding_rates=prices({"ETH": "0.0001"}))
    return sim


# -- shape comparison ----------------------------------------------------------------------------


def same_shape(
    ours: Any, sample: Any, path: str = "$", optional: frozenset[str] = frozenset()
) -> None:
    """Same keys (``optional`` ones may be missing on either side) and the same JSON types;
    ``None`` matches anything under a nullable key. Lists: every element of ours against the
    sample's first."""
    key = path.rsplit(".", 1)[-1]
    if ours is None or sample is None:
        assert ours is sample or key in NULLABLE, f"{path}: {ours!r} vs {sample!r}"
        return
    if isinstance(sample, dict):
        assert isinstance(ours, dict), f"{path}: not an object"
        assert set(ours) - optional == set(sample) - optional, f"{path}: {set(ours) ^ set(sample)}"
        for name in set(ours) & set(sample):
            same_shape(ours[name], sample[name], f"{path}.{name}", optional)
        return
    if isinstance(sample, list):
        assert isinstance(ours, list), f"{path}: not an array"
        if not sample:
            return
        kinds = {type(item) for item in sample}
        if len(kinds) > 1:  # a tuple such as [id, table] or [meta, ctxs]: position by position
            assert len(ours) == len(sample), f"{path}: length {len(ours)} vs {len(sample)}"
            for i, (mine, theirs) in enumerate(zip(ours, sample, strict=True)):
                same_shape(mine, theirs, f"{path}[{i}]", optional)
            return
        for i, item in enumerate(ours):
            same_shape(item, sample[0], f"{path}[{i}]", optional)
        return
    assert type(ours) is type(sample), f"{path}: {type(ours).__name__} vs {type(sample).__name__}"


def sample(shared: Path, name: str) -> Any:
    return json.loads((shared / "contracts" / "hyperliquid" / name).read_text())


@pytest.fixture(scope="module")
def busy() -> SimVenue:
    return busy_venue()


# -- market data ---------------------------------------------------------------------------------


def test_meta_lists_the_universe_in_asset_id_order(busy: SimVenue) -> None:
    meta = busy.info({"type": "meta", "dex": ""})
    assert [(a["name"], a["szDecimals"], a["maxLeverage"]) for a in meta["universe"]] == [
        ("BTC", 5, 40),
        ("ETH", 4, 25),
        ("SOL", 2, 20),
        ("BNB", 3, 10),
        ("DOGE", 0, 10),
        ("XRP", 0, 20),
    ]
    assert [a["marginTableId"] for a in meta["universe"]] == [40, 25, 20, 10, 10, 20]
    assert [table[0] for table in meta["marginTables"]] == [10, 20, 25, 40]
    assert meta["marginTables"][0][1]["marginTiers"] == [{"lowerBound": "0.0", "maxLeverage": 10}]
    assert meta["collateralToken"] == 0


def test_meta_matches_the_composed_universe(busy: SimVenue, shared_dir: Path) -> None:
    theirs = sample(shared_dir, "info_meta_trimmed_composed.json")["response"]
    ours = busy.info({"type": "meta"})
    same_shape(ours, theirs)
    names = [(a["name"], a["szDecimals"], a["maxLeverage"]) for a in theirs["universe"]]
    assert [(a["name"], a["szDecimals"], a["maxLeverage"]) for a in ours["universe"]] == names


def test_meta_and_asset_ctxs(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "metaAndAssetCtxs"})
    same_shape(ours, sample(shared_dir, "info_metaAndAssetCtxs_trimmed_composed.json")["response"])


def test_asset_ctx_values() -> None:
    sim = venue(mids=ALL_MIDS)
    one(sim, limit(ETH, True, "2010", "1.5", "Ioc"))
    sim.advance(
        T0 + 1000,
        prices(ALL_MIDS),
        marks=prices({"ETH": "2001"}),
        oracles=prices({"ETH": "1999"}),
        funding_rates=prices({"ETH": "0.00002"}),
    )
    ctx = sim.info({"type": "metaAndAssetCtxs"})[1][ETH]
    assert {k: ctx[k] for k in ("funding", "openInterest", "oraclePx", "markPx", "midPx")} == {
        "funding": "0.00002",
        "openInterest": "1.5",
        "oraclePx": "1999.0",
        "markPx": "2001.0",
        "midPx": "2000.0",
    }
    assert (ctx["dayBaseVlm"], ctx["dayNtlVlm"], ctx["prevDayPx"]) == ("1.5", "3001.5", "2000.0")
    bid, ask = (D(px) for px in ctx["impactPxs"])
    assert bid < D(1999) < D(2001) < ask  # $20k walks several levels each way
    assert ctx["premium"] == "0.0"  # the oracle sits between the impact prices
    btc = sim.info({"type": "metaAndAssetCtxs"})[1][0]
    assert btc["funding"] == "0.0000125"


def test_asset_ctx_of_an_unpriced_coin() -> None:
    ctx = venue().info({"type": "metaAndAssetCtxs"})[1][4]  # DOGE never priced
    assert (ctx["midPx"], ctx["impactPxs"], ctx["premium"], ctx["markPx"]) == (
        None,
        None,
        None,
        "0.0",
    )


def test_all_mids(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "allMids", "dex": ""})
    theirs = sample(shared_dir, "info_allMids_composed.json")["response"]
    same_shape(ours, theirs)
    assert ours["BTC"] == "80000.0"
    assert ours["DOGE"] == "0.2"


def test_all_mids_lists_priced_coins_only() -> None:
    assert venue().info({"type": "allMids"}) == {"ETH": "2000.0", "BTC": "80000.0", "SOL": "100.0"}


def test_l2_book(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "l2Book", "coin": "BTC", "nSigFigs": None})
    same_shape(ours, sample(shared_dir, "info_l2Book_BTC_capture.json")["response"])
    assert busy.info({"type": "l2Book", "coin": "NOPE"}) is None


def test_l2_book_levels_are_ordered_and_at_most_twenty() -> None:
    sim = SimVenue.open(venue().config.__class__(), None)  # default book: 20 levels, jitter
    sim.advance(T0, prices({"ETH": "2000"}))
    bids, asks = sim.info({"type": "l2Book", "coin": "ETH"})["levels"]
    assert len(bids) == len(asks) == 20
    bid_px = [D(level["px"]) for level in bids]
    ask_px = [D(level["px"]) for level in asks]
    assert bid_px == sorted(bid_px, reverse=True)
    assert ask_px == sorted(ask_px)
    assert bid_px[0] < D(2000) < ask_px[0]
    assert all(isinstance(level["n"], int) and level["n"] >= 1 for level in bids + asks)


def test_candle_snapshot(busy: SimVenue, shared_dir: Path) -> None:
    request = {
        "type": "candleSnapshot",
        "req": {"coin": "ETH", "interval": "1h", "startTime": 0, "endTime": HOUR0 + 2 * HOUR},
    }
    ours = busy.info(request)
    same_shape(ours, sample(shared_dir, "info_candleSnapshot_BTC_1h_capture.json")["response"])


# -- accounts ------------------------------------------------------------------------------------


def test_clearinghouse_state_cross(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "clearinghouseState", "user": ALICE, "dex": ""})
    theirs = sample(shared_dir, "info_clearinghouseState_cross_capture.json")["response"]
    cross = dict(
        ours, assetPositions=[p for p in ours["assetPositions"] if p["position"]["coin"] == "ETH"]
    )
    same_shape(cross, theirs)


def test_clearinghouse_state_isolated(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "clearinghouseState", "user": ALICE})
    theirs = sample(shared_dir, "info_clearinghouseState_docs_isolated.json")["response"]
    isolated = dict(
        ours, assetPositions=[p for p in ours["assetPositions"] if p["position"]["coin"] == "SOL"]
    )
    same_shape(isolated, theirs)


def test_clearinghouse_state_of_a_fresh_account(shared_dir: Path) -> None:
    sim = venue(cash="1000")
    ours = sim.info({"type": "clearinghouseState", "user": ALICE})
    theirs = sample(shared_dir, "info_clearinghouseState_empty_composed.json")["response"]
    assert ours == dict(theirs, time=T0)


def test_clearinghouse_state_of_an_unknown_user_is_all_zeros() -> None:
    state = venue().info({"type": "clearinghouseState", "user": "0x" + "9" * 40})
    zero = {
        "accountValue": "0.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "0.0",
        "totalMarginUsed": "0.0",
    }
    assert state == {
        "marginSummary": zero,
        "crossMarginSummary": zero,
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": "0.0",
        "assetPositions": [],
        "time": T0,
    }


def test_active_asset_data() -> None:
    sim = venue()
    data = sim.info({"type": "activeAssetData", "user": ALICE, "coin": "ETH"})
    # 10000 free at 20x: 200000 USD of ETH at 2000 either way
    assert data == {
        "user": ALICE,
        "coin": "ETH",
        "leverage": {"type": "cross", "value": 20},
        "maxTradeSzs": ["100.0", "100.0"],
        "availableToTrade": ["200000.0", "200000.0"],
        "markPx": "2000.0",
    }
    assert sim.info({"type": "activeAssetData", "user": ALICE, "coin": "NOPE"}) is None


def test_user_rate_limit(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "userRateLimit", "user": ALICE})
    same_shape(ours, sample(shared_dir, "info_userRateLimit_examples.json")["items"][0]["response"])


def test_user_rate_limit_values() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    sim.exchange(ALICE, {"type": "noop"})
    assert sim.info({"type": "userRateLimit", "user": ALICE}) == {
        "cumVlm": "2001.0",
        "nRequestsUsed": 2,
        "nRequestsCap": 12001,
        "nRequestsSurplus": 0,
    }


def test_user_fees() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    fees = sim.info({"type": "userFees", "user": ALICE})
    assert (fees["userCrossRate"], fees["userAddRate"]) == ("0.00045", "0.00015")
    assert (fees["feeSchedule"]["cross"], fees["feeSchedule"]["add"]) == ("0.00045", "0.00015")
    (day,) = fees["dailyUserVlm"]
    assert (day["userCross"], day["userAdd"]) == ("2001.0", "0.0")
    assert {"activeReferralDiscount", "feeSchedule", "dailyUserVlm"} <= set(fees)


# -- orders --------------------------------------------------------------------------------------


def test_open_orders(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "openOrders", "user": ALICE, "dex": ""})
    theirs = sample(shared_dir, "info_openOrders_examples.json")["items"][1]["response"]
    same_shape(ours, theirs, optional=frozenset({"cloid", "reduceOnly"}))
    assert [row["oid"] for row in ours] == sorted((row["oid"] for row in ours), reverse=True)
    by_oid = {row["oid"]: row for row in ours}
    assert by_oid[3]["cloid"] == cloid(2)
    assert "reduceOnly" not in by_oid[3]
    assert by_oid[4]["reduceOnly"] is True
    assert "cloid" not in by_oid[4]


def test_frontend_open_orders(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "frontendOpenOrders", "user": ALICE})
    theirs = sample(shared_dir, "info_frontendOpenOrders_sdk_cassette_2023.json")["response"]
    same_shape(ours, theirs[2:], optional=frozenset({"cloid"}))  # the parent row (with children)
    assert all("cloid" in row for row in ours)  # the 2026 shape: null when unset
    parent = next(row for row in ours if row["children"])
    assert [child["orderType"] for child in parent["children"]] == ["Take Profit Market"]


def test_historical_orders(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "historicalOrders", "user": ALICE})
    theirs = sample(shared_dir, "info_historicalOrders_sdk_cassette_2025.json")["response"]
    same_shape(ours, theirs)
    assert {row["status"] for row in ours} >= {"open", "filled"}


def test_order_status(busy: SimVenue, shared_dir: Path) -> None:
    examples = sample(shared_dir, "info_orderStatus_examples.json")
    found = busy.info({"type": "orderStatus", "user": ALICE, "oid": 1})
    same_shape(found, examples["response_found"])
    by_cloid = busy.info({"type": "orderStatus", "user": ALICE, "oid": cloid(1)})
    assert by_cloid == found
    missing = busy.info({"type": "orderStatus", "user": ALICE, "oid": 999})
    assert missing == examples["response_missing"] == {"status": "unknownOid"}


def test_order_status_of_a_filled_order_shows_what_remains() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "0.25", "Ioc"))
    answer = sim.info({"type": "orderStatus", "user": ALICE, "oid": 1})
    assert answer["order"]["status"] == "filled"
    assert answer["order"]["statusTimestamp"] == T0
    order = answer["order"]["order"]
    assert (order["sz"], order["origSz"], order["tif"], order["orderType"]) == (
        "0.0",
        "0.25",
        "Ioc",
        "Limit",
    )


# -- fills and funding ---------------------------------------------------------------------------

FILL_OPTIONAL = frozenset({"builderFee", "cloid", "liquidation", "twapId"})


def test_user_fills(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "userFills", "user": ALICE})
    theirs = sample(shared_dir, "info_userFills_examples.json")["items"][0]["response"]
    same_shape(ours, theirs, optional=FILL_OPTIONAL)
    times = [row["time"] for row in ours]
    assert times == sorted(times, reverse=True)


def test_user_fills_by_time_is_oldest_first_with_inclusive_bounds() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    for n, at in enumerate((T0 + 1000, T0 + 2000, T0 + 3000)):
        sim.advance(at, prices({"ETH": "2000"}))
        one(sim, limit(ETH, n % 2 == 1, "2010" if n % 2 else "1990", "0.1", "Ioc"))
    rows = sim.info(
        {
            "type": "userFillsByTime",
            "user": ALICE,
            "startTime": T0 + 1000,
            "endTime": T0 + 2000,
            "aggregateByTime": False,
        }
    )
    assert [row["time"] for row in rows] == [T0 + 1000, T0 + 2000]
    open_ended = sim.info(
        {"type": "userFillsByTime", "user": ALICE, "startTime": T0 + 2000, "endTime": None}
    )
    assert [row["time"] for row in open_ended] == [T0 + 2000, T0 + 3000]
    tids = [row["tid"] for row in sim.info({"type": "userFills", "user": ALICE})]
    assert tids == sorted(tids, reverse=True)
    assert len(set(tids)) == 4


def test_time_range_answers_are_every_row_in_the_range_oldest_first() -> None:
    # The answers are read from the newest end of the history; over a long one, with
    # several fills at one time, they must hold every row in range, as a full scan does.
    sim = venue()
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    stamps = [T0 + 1000 * (n // 2) for n in range(2, 40)]  # two fills a stamp
    for n, at in enumerate(stamps):
        sim.advance(at, prices({"ETH": "2000"}))
        one(sim, limit(ETH, n % 2 == 1, "2010" if n % 2 else "1990", "0.01", "Ioc"))
    zero = {"ETH": D(0)}
    for hour in range(1, 6):  # funding payments on the hours
        sim.advance(HOUR0 + hour * HOUR, prices({"ETH": "2000"}), funding_rates=zero)
    every_fill = sim.info({"type": "userFills", "user": ALICE})[::-1]
    every_payment = sim.info({"type": "userFunding", "user": ALICE, "startTime": 0})
    assert len(every_fill) == 39
    assert len(every_payment) == 5
    fill_times = sorted({row["time"] for row in every_fill})
    pay_times = [row["time"] for row in every_payment]
    for start in [0, *fill_times, fill_times[-1] + 1, *pay_times]:
        for end in (None, start + 3000):
            fills = sim.info(
                {"type": "userFillsByTime", "user": ALICE, "startTime": start, "endTime": end}
            )
            assert fills == [
                r for r in every_fill if r["time"] >= start and (end is None or r["time"] <= end)
            ]
            request = {"type": "userFunding", "user": ALICE, "startTime": start}
            paid = sim.info(request if end is None else {**request, "endTime": end})
            assert paid == [
                r for r in every_payment if r["time"] >= start and (end is None or r["time"] <= end)
            ]


def test_funding_history(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "fundingHistory", "coin": "ETH", "startTime": 0})
    theirs = sample(shared_dir, "info_fundingHistory_examples.json")["items"][0]["response"]
    same_shape(ours, theirs)


def test_user_funding(busy: SimVenue, shared_dir: Path) -> None:
    ours = busy.info({"type": "userFunding", "user": ALICE, "startTime": 0})
    theirs = sample(shared_dir, "info_userFunding_examples.json")["items"][0]["response"]
    same_shape(ours, theirs)


def test_user_non_funding_ledger_updates_list_deposits_and_withdrawals() -> None:
    sim = venue()  # ALICE funded with 10000 before T0
    sim.advance(T0 + 1000, prices(MIDS))
    sim.fund(ALICE, D(500))
    one(sim, limit(ETH, True, "2010", "4", "Ioc"))  # 8000 USD of ETH at 20x: 400 margin
    sim.advance(T0 + 2000, prices(MIDS))
    sim.withdraw(ALICE, D(1000))
    rows = sim.info({"type": "userNonFundingLedgerUpdates", "user": ALICE, "startTime": 0})
    assert [(r["time"], r["delta"]["type"], r["delta"]["usdc"]) for r in rows] == [
        (0, "deposit", "10000.0"),
        (T0 + 1000, "deposit", "500.0"),
        (T0 + 2000, "withdraw", "1000.0"),
    ]
    assert rows[2]["delta"]["fee"] == "0.0"
    assert isinstance(rows[2]["delta"]["nonce"], int)
    assert all(r["hash"].startswith("0x") and len(r["hash"]) == 66 for r in rows)
    assert len({r["hash"] for r in rows}) == 3
    window = {"startTime": T0 + 1, "endTime": T0 + 1500}
    bounded = sim.info({"type": "userNonFundingLedgerUpdates", "user": ALICE, **window})
    assert [r["delta"]["usdc"] for r in bounded] == ["500.0"]
    assert sim.info({"type": "userNonFundingLedgerUpdates", "user": BOB, "startTime": 0}) == []


def test_a_withdrawal_is_limited_to_what_the_account_may_withdraw() -> None:
    sim = venue(cash="1000")
    one(sim, limit(ETH, True, "2010", "4", "Ioc"))  # ~8000 USD at 20x: ~800 held by transfers
    value = sim.account_value(ALICE)
    with pytest.raises(ValueError, match="can withdraw at most"):
        sim.withdraw(ALICE, D(900))
    with pytest.raises(ValueError, match="positive"):
        sim.withdraw(ALICE, D(0))
    with pytest.raises(ValueError, match="can withdraw at most 0"):
        sim.withdraw(BOB, D(1))
    with pytest.raises(ValueError, match="positive"):
        sim.fund(ALICE, D(-5))
    assert sim.account_value(ALICE) == value  # nothing moved


# -- roles ---------------------------------------------------------------------------------------


def test_spot_meta(busy: SimVenue, shared_dir: Path) -> None:
    theirs = sample(shared_dir, "info_spotMeta_examples.json")["items"][0]["response"]
    assert busy.info({"type": "spotMeta"}) == theirs == {"universe": [], "tokens": []}


def test_user_role_and_extra_agents(busy: SimVenue, shared_dir: Path) -> None:
    items = sample(shared_dir, "info_userRole_extraAgents_examples.json")["items"]
    same_shape(busy.info({"type": "userRole", "user": AGENT}), items[1]["response"])
    same_shape(busy.info({"type": "userRole", "user": "0x" + "9" * 40}), items[2]["response"])
    same_shape(busy.info({"type": "extraAgents", "user": ALICE}), items[3]["response"])


# -- candles -------------------------------------------------------------------------------------


def candles(sim: SimVenue, interval: str, start: int, end: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = sim.info(
        {
            "type": "candleSnapshot",
            "req": {"coin": "ETH", "interval": interval, "startTime": start, "endTime": end},
        }
    )
    return rows


def test_candles_are_built_from_the_mids_seen() -> None:
    sim = venue()  # 2000 at T0 (a minute boundary)
    for offset, mid in ((20_000, "2010"), (40_000, "1995"), (60_000, "2003"), (150_000, "2001")):
        sim.advance(T0 + offset, prices({"ETH": mid}))
    one(sim, limit(ETH, True, "2010", "0.5", "Ioc"))  # a trade adds volume, not a price
    rows = candles(sim, "1m", T0, T0 + 600_000)
    assert [(r["t"], r["T"], r["o"], r["h"], r["l"], r["c"], r["v"], r["n"]) for r in rows] == [
        (T0, T0 + 59_999, "2000.0", "2010.0", "1995.0", "1995.0", "0.0", 0),
        (T0 + 60_000, T0 + 119_999, "2003.0", "2003.0", "2003.0", "2003.0", "0.0", 0),
        (T0 + 120_000, T0 + 179_999, "2001.0", "2001.0", "2001.0", "2001.0", "0.5", 1),
    ]
    assert rows[0]["s"] == "ETH"
    assert rows[0]["i"] == "1m"
    three = candles(sim, "3m", T0, T0 + 600_000)
    # T0 = HOUR0 + 1 min: the first 3-minute candle opened at HOUR0, the next at HOUR0 + 3 min
    assert [(r["t"], r["T"], r["o"], r["h"], r["l"], r["c"], r["v"]) for r in three] == [
        (HOUR0, HOUR0 + 179_999, "2000.0", "2010.0", "1995.0", "2003.0", "0.0"),
        (HOUR0 + 180_000, HOUR0 + 359_999, "2001.0", "2001.0", "2001.0", "2001.0", "0.5"),
    ]
    assert candles(sim, "1m", T0 + 60_000, T0 + 60_000)[0]["t"] == T0 + 60_000


def test_a_candle_source_replaces_the_built_candles() -> None:
    sim = venue()
    calls: list[tuple[str, str, int, int, int]] = []

    def source(coin: str, interval: str, start: int, end: int, now: int) -> list[dict[str, Any]]:
        calls.append((coin, interval, start, end, now))
        return [{"t": start}]

    sim.set_candle_source(source)
    assert candles(sim, "4h", 1, 2) == [{"t": 1}]
    assert calls == [("ETH", "4h", 1, 2, T0)]
    sim.set_candle_source(None)
    assert candles(sim, "4h", 0, T0) != [{"t": 1}]


def test_week_and_month_candles_align_to_mondays_and_the_first() -> None:
    sim = venue()
    (week,) = candles(sim, "1w", 0, T0)
    (month,) = candles(sim, "1M", 0, T0)
    from datetime import UTC, datetime

    opened = datetime.fromtimestamp(week["t"] / 1000, UTC)
    assert (opened.weekday(), opened.hour, opened.minute) == (0, 0, 0)
    assert week["T"] - week["t"] == 7 * 86_400_000 - 1
    first = datetime.fromtimestamp(month["t"] / 1000, UTC)
    assert (first.day, first.hour) == (1, 0)


# -- bad requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        {"type": "nope"},
        {},
        {"type": 3},
        {"type": "clearinghouseState"},
        {"type": "clearinghouseState", "user": 5},
        {"type": "l2Book"},
        {"type": "orderStatus", "user": ALICE, "oid": "0x12"},
        {"type": "orderStatus", "user": ALICE, "oid": True},
        {"type": "userFunding", "user": ALICE},
        {"type": "userFillsByTime", "user": ALICE, "startTime": "0"},
        {
            "type": "candleSnapshot",
            "req": {"coin": "ETH", "interval": "2m", "startTime": 0, "endTime": 1},
        },
        {"type": "candleSnapshot", "coin": "ETH"},
    ],
)
def test_unknown_or_malformed_requests_raise(request_body: dict[str, Any]) -> None:
    with pytest.raises(
        InfoRequestError, match="Failed to deserialize the JSON body into the target type"
    ):
        venue().info(request_body)


def test_a_non_object_request_raises() -> None:
    with pytest.raises(InfoRequestError):
        venue().info([])  # type: ignore[arg-type]


# -- exchange envelopes --------------------------------------------------------------------------


def test_exchange_envelopes_match_the_samples(shared_dir: Path) -> None:
    samples = sample(shared_dir, "exchange_responses.json")
    sim = venue()
    resting = sim.exchange(
        ALICE, {"type": "order", "orders": [limit(ETH, True, "1990", "1")], "grouping": "na"}
    )
    same_shape(resting, samples["order"]["resting"]["response"])
    filled = sim.exchange(
        ALICE,
        {"type": "order", "orders": [limit(ETH, True, "2010", "0.5", "Ioc")], "grouping": "na"},
    )
    same_shape(filled, samples["order"]["filled"]["response"])
    with_cloid = sim.exchange(
        ALICE,
        {
            "type": "order",
            "orders": [limit(ETH, True, "2010", "0.5", "Ioc", cloid=cloid(7))],
            "grouping": "na",
        },
    )
    same_shape(with_cloid, samples["order"]["filled_with_cloid"]["response"])
    bracket = sim.exchange(
        ALICE,
        {
            "type": "order",
            "orders": [
                limit(ETH, True, "1980", "1", cloid=cloid(8)),
                trigger(ETH, False, "1800", "1", "1900", "sl"),
            ],
            "grouping": "normalTpsl",
        },
    )
    assert bracket["response"]["data"]["statuses"][1] == "waitingForFill"
    same_shape(
        bracket["response"]["data"]["statuses"][0],
        samples["order"]["resting_with_cloid_and_waitingForFill"]["response"]["response"]["data"][
            "statuses"
        ][0],
    )
    tpsl = sim.exchange(
        ALICE,
        {
            "type": "order",
            "orders": [trigger(ETH, False, "1800", "1", "1900", "sl")],
            "grouping": "positionTpsl",
        },
    )
    assert tpsl == samples["order"]["position_tpsl_trigger"]["response"]
    cancel = sim.exchange(ALICE, {"type": "cancel", "cancels": [{"a": ETH, "o": 1}]})
    assert cancel == samples["cancel"]["success"]["response"]
    again = sim.exchange(ALICE, {"type": "cancel", "cancels": [{"a": ETH, "o": 1}]})
    assert again == samples["cancel"]["missing_order"]["response"]
    modify = sim.exchange(
        ALICE,
        {"type": "batchModify", "modifies": [{"oid": 1, "order": limit(ETH, True, "1990", "1")}]},
    )
    assert modify == samples["modify"]["modify_missing"]["response"]
    leverage = sim.exchange(
        ALICE, {"type": "updateLeverage", "asset": ETH, "isCross": True, "leverage": 10}
    )
    assert leverage == samples["default_ok"]["response"]
    too_small = sim.exchange(
        ALICE,
        {"type": "order", "orders": [limit(ETH, True, "2010", "0.001", "Ioc")], "grouping": "na"},
    )
    error = too_small["response"]["data"]["statuses"][0]["error"]
    assert error.startswith(
        samples["order"]["error_min_value_docs"]["response"]["response"]["data"]["statuses"][0][
            "error"
        ]
    )
    assert error in samples["order"]["error_strings_seen_live"][
        "per_order_errors"
    ] or error.endswith("asset=1")
