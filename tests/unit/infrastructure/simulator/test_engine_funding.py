"""SimVenue funding: hourly settlement on the oracle price, signs, multi-hour jumps, history
rows, cumFunding, and no double settlement across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infrastructure.simulator.engine import SimVenue
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BOB,
    ETH,
    HOUR,
    HOUR0,
    T0,
    config,
    limit,
    one,
    position,
    prices,
    venue,
)

RATE = {"ETH": "0.0001"}


def funding_rows(sim: SimVenue, user: str = ALICE, start: int = 0) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = sim.info({"type": "userFunding", "user": user, "startTime": start})
    return rows


def long_and_short() -> SimVenue:
    sim = venue(users=(ALICE, BOB))
    one(sim, limit(ETH, True, "2010", "1", "Ioc"), user=ALICE)
    one(sim, limit(ETH, False, "1990", "2", "Ioc"), user=BOB)
    return sim


def test_longs_pay_shorts_on_the_oracle_price_at_the_hour() -> None:
    sim = long_and_short()
    sim.advance(HOUR0 + HOUR - 1, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert funding_rows(sim) == []
    sim.advance(
        HOUR0 + HOUR + 5,
        prices({"ETH": "2000"}),
        oracles=prices({"ETH": "2010"}),
        funding_rates=prices(RATE),
    )
    (alice,) = funding_rows(sim)
    assert alice["time"] == HOUR0 + HOUR
    assert alice["hash"].startswith("0x")
    assert len(alice["hash"]) == 66
    # −szi × oracle × rate = −1 × 2010 × 0.0001
    assert alice["delta"] == {
        "type": "funding",
        "coin": "ETH",
        "usdc": "-0.201",
        "szi": "1.0",
        "fundingRate": "0.0001",
        "nSamples": None,
    }
    (bob,) = funding_rows(sim, BOB)
    assert (bob["delta"]["usdc"], bob["delta"]["szi"]) == ("0.402", "-2.0")
    cum = position(sim, "ETH")["cumFunding"]  # type: ignore[index]
    assert cum == {"allTime": "0.201", "sinceOpen": "0.201", "sinceChange": "0.201"}  # + = paid
    assert position(sim, "ETH", BOB)["cumFunding"]["allTime"] == "-0.402"  # type: ignore[index]


def test_funding_moves_the_account_value() -> None:
    sim = long_and_short()
    before = sim.account_value(ALICE)
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert sim.account_value(ALICE) == before - prices({"x": "0.2"})["x"]  # 1 × 2000 × 0.0001


def test_the_configured_rate_applies_when_none_is_fed() -> None:
    sim = long_and_short()
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000"}))
    (row,) = funding_rows(sim)
    # 1 × 2000 × 0.0000125 = 0.025
    assert (row["delta"]["usdc"], row["delta"]["fundingRate"]) == ("-0.025", "0.0000125")


def test_funding_is_rounded_to_micro_dollars() -> None:
    sim = venue()
    one(sim, limit(ETH, True, "2010", "0.0123", "Ioc"))
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000.7"}), funding_rates=prices({"ETH": "0.0000137"}))
    # 0.0123 × 2000.7 × 0.0000137 = 0.000337137957 -> 0.000337
    assert funding_rows(sim)[0]["delta"]["usdc"] == "-0.000337"


def test_a_multi_hour_jump_settles_every_hour() -> None:
    sim = long_and_short()
    sim.advance(HOUR0 + 3 * HOUR + 10, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    rows = funding_rows(sim)
    assert [row["time"] for row in rows] == [HOUR0 + HOUR, HOUR0 + 2 * HOUR, HOUR0 + 3 * HOUR]
    assert {row["delta"]["usdc"] for row in rows} == {"-0.2"}
    history = sim.info({"type": "fundingHistory", "coin": "ETH", "startTime": HOUR0 + 2 * HOUR})
    assert [(row["time"], row["fundingRate"]) for row in history] == [
        (HOUR0 + 2 * HOUR, "0.0001"),
        (HOUR0 + 3 * HOUR, "0.0001"),
    ]
    assert all(isinstance(row["premium"], str) for row in history)
    bounded = sim.info(
        {"type": "userFunding", "user": ALICE, "startTime": 0, "endTime": HOUR0 + 2 * HOUR}
    )
    assert len(bounded) == 2


def test_rates_are_capped_at_four_percent_an_hour() -> None:
    sim = long_and_short()
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000"}), funding_rates=prices({"ETH": "0.5"}))
    assert funding_rows(sim)[0]["delta"]["fundingRate"] == "0.04"


def test_since_change_resets_when_the_size_changes_and_since_open_on_a_new_position() -> None:
    sim = long_and_short()
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    cum = position(sim, "ETH")["cumFunding"]  # type: ignore[index]
    assert cum == {"allTime": "0.2", "sinceOpen": "0.2", "sinceChange": "0.0"}
    one(sim, limit(ETH, False, "1990", "2", "Ioc"))
    sim.advance(HOUR0 + HOUR + 1000, prices({"ETH": "2000"}))
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    cum = position(sim, "ETH")["cumFunding"]  # type: ignore[index]
    assert cum == {"allTime": "0.2", "sinceOpen": "0.0", "sinceChange": "0.0"}


def test_isolated_funding_is_booked_to_the_isolated_margin() -> None:
    sim = venue()
    sim.exchange(ALICE, {"type": "updateLeverage", "asset": ETH, "isCross": False, "leverage": 10})
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    raw = position(sim, "ETH")["leverage"]["rawUsd"]  # type: ignore[index]
    assert raw == "-1800.9"  # margin 200.1 − 2001
    sim.advance(HOUR0 + HOUR, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert position(sim, "ETH")["leverage"]["rawUsd"] == "-1801.1"  # type: ignore[index]


def test_a_restart_does_not_settle_an_hour_twice(tmp_path: Path) -> None:
    sim = venue(state_dir=tmp_path)
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    sim.advance(HOUR0 + HOUR + 5, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert len(funding_rows(sim)) == 1
    again = SimVenue.open(config(), tmp_path)
    assert again.now_ms == HOUR0 + HOUR + 5
    again.advance(HOUR0 + HOUR + 600_000, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert len(funding_rows(again)) == 1
    again.advance(HOUR0 + 2 * HOUR, prices({"ETH": "2000"}), funding_rates=prices(RATE))
    assert [row["time"] for row in funding_rows(again)] == [HOUR0 + HOUR, HOUR0 + 2 * HOUR]


def test_no_settlement_before_the_first_hour_boundary() -> None:
    sim = venue()
    assert sim.now_ms == T0
    one(sim, limit(ETH, True, "2010", "1", "Ioc"))
    sim.advance(HOUR0 + HOUR - 1, prices({"ETH": "2000"}))
    assert funding_rows(sim) == []
    assert sim.info({"type": "fundingHistory", "coin": "ETH", "startTime": 0}) == []
