"""SimVenue durability and determinism: a restarted venue continues exactly; torn or
uncommitted history tails are cut; histories stay bounded; same seed and inputs, same outputs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infrastructure.simulator.engine import SimConfig, SimVenue
from infrastructure.simulator.store import CORE, HISTORY, Store
from tests.unit.infrastructure.simulator.simkit import (
    ALICE,
    BOB,
    ETH,
    HOUR,
    HOUR0,
    SOL,
    T0,
    D,
    cloid,
    config,
    fills,
    limit,
    one,
    open_oids,
    place,
    prices,
    status_of,
    trigger,
    venue,
)

AGENT = "0x" + "c1" * 20
USER_QUERIES = (
    "clearinghouseState",
    "openOrders",
    "frontendOpenOrders",
    "historicalOrders",
    "userFills",
    "userRateLimit",
    "userFees",
    "extraAgents",
    "userRole",
)


def snapshot(sim: SimVenue) -> dict[str, Any]:
    views: dict[str, Any] = {kind: sim.info({"type": kind, "user": ALICE}) for kind in USER_QUERIES}
    views["userFunding"] = sim.info({"type": "userFunding", "user": ALICE, "startTime": 0})
    views["ledger"] = sim.info(
        {"type": "userNonFundingLedgerUpdates", "user": ALICE, "startTime": 0}
    )
    views["fundingHistory"] = sim.info({"type": "fundingHistory", "coin": "ETH", "startTime": 0})
    views["l2Book"] = sim.info({"type": "l2Book", "coin": "ETH"})
    views["now"] = sim.now_ms
    return views


def eventful(state_dir: Path | None, seed: int = 0, book: Any = None) -> SimVenue:
    overrides: dict[str, Any] = {"seed": seed}
    if book is not None:
        overrides["book"] = book
    sim = venue(state_dir=state_dir, users=(ALICE, BOB), **overrides)
    sim.approve_agent(ALICE, AGENT, "bot", None)
    sim.set_vault_leader("0x" + "d4" * 20, ALICE)
    assert sim.use_nonce(AGENT, T0) is None
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
    sim.exchange(ALICE, {"type": "scheduleCancel", "time": HOUR0 + 5 * HOUR})
    sim.advance(HOUR0 + HOUR + 5, prices({"ETH": "1985", "SOL": "101"}))  # maker fill, funding
    one(sim, limit(ETH, False, "1900", "0.2", "Ioc"), user=BOB)
    sim.withdraw(ALICE, D(25))
    return sim


def test_a_reopened_venue_continues_exactly(tmp_path: Path) -> None:
    sim = eventful(tmp_path)
    before = snapshot(sim)
    again = SimVenue.open(config(), tmp_path)
    assert snapshot(again) == before
    assert again.resolve_signer(AGENT) == ALICE
    assert again.resolve_signer(ALICE, "0x" + "d4" * 20) == "0x" + "d4" * 20
    assert again.use_nonce(AGENT, T0) == f"Invalid nonce: duplicate nonce {T0}"
    assert again.account_value(ALICE) == sim.account_value(ALICE)
    assert [row["delta"]["type"] for row in before["ledger"]] == ["deposit", "withdraw"]
    # counters continue: the next order and fill get the next oid and tid
    for one_venue in (sim, again):
        one(one_venue, limit(ETH, True, "2010", "0.1", "Ioc"))
    assert fills(again)[-1] == fills(sim)[-1]
    # and the scheduled cancel is still armed
    again.advance(HOUR0 + 5 * HOUR, prices({"ETH": "2000"}))
    assert open_oids(again) == []


def test_a_venue_without_a_state_dir_leaves_nothing_behind(tmp_path: Path) -> None:
    eventful(None)
    assert list(tmp_path.iterdir()) == []


def test_a_torn_history_tail_is_cut(tmp_path: Path) -> None:
    sim = eventful(tmp_path)
    before = snapshot(sim)
    with (tmp_path / HISTORY).open("ab") as handle:
        handle.write(b'{"type":"fill","seq":99999,"user":"0xa1')  # a crash mid-append
    again = SimVenue.open(config(), tmp_path)
    assert snapshot(again) == before
    assert (tmp_path / HISTORY).read_bytes().endswith(b"}\n")
    one(again, limit(ETH, True, "2010", "0.1", "Ioc"))
    assert len(fills(SimVenue.open(config(), tmp_path))) == len(before["userFills"]) + 1


def test_history_written_before_a_crash_that_lost_the_core_is_cut(tmp_path: Path) -> None:
    sim = eventful(tmp_path)
    before = snapshot(sim)
    real_replace = Store._replace

    def crash(self: Store, path: Path, data: bytes) -> None:
        raise OSError("power cut")

    Store._replace = crash  # type: ignore[method-assign]
    try:
        with pytest.raises(OSError, match="power cut"):
            one(sim, limit(ETH, True, "2010", "0.1", "Ioc"))
    finally:
        Store._replace = real_replace  # type: ignore[method-assign]
    again = SimVenue.open(config(), tmp_path)
    assert snapshot(again) == before


def test_a_missing_core_means_a_fresh_venue(tmp_path: Path) -> None:
    eventful(tmp_path)
    (tmp_path / CORE).unlink()
    fresh = SimVenue.open(config(), tmp_path)
    assert fresh.now_ms == 0
    assert fresh.info({"type": "userFills", "user": ALICE}) == []
    assert not (tmp_path / HISTORY).exists()


def test_histories_stay_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    sim = venue(state_dir=tmp_path, fills_kept=5, orders_kept=5, funding_kept=5)
    for n in range(40):
        sim.advance(T0 + 1000 * n, prices({"ETH": "2000"}))
        one(sim, limit(ETH, n % 2 == 0, "2010" if n % 2 == 0 else "1990", "0.1", "Ioc"))
    assert len(fills(sim)) == 5
    assert len(sim.info({"type": "historicalOrders", "user": ALICE})) == 5
    assert status_of(sim, 1) == "unknownOid"
    assert status_of(sim, 40) == "filled"
    again = SimVenue.open(config(fills_kept=5, orders_kept=5, funding_kept=5), tmp_path)
    assert fills(again) == fills(sim)
    lines = (tmp_path / HISTORY).read_bytes().count(b"\n")
    assert lines <= 80 + 10_000  # compaction keeps it within 2 × what memory holds + slack


def test_compaction_rewrites_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infrastructure.simulator.engine.COMPACT_SLACK", 0)
    sim = venue(state_dir=tmp_path, fills_kept=3, orders_kept=3, funding_kept=3)
    for n in range(30):
        sim.advance(T0 + 1000 * n, prices({"ETH": "2000"}))
        one(sim, limit(ETH, n % 2 == 0, "2010" if n % 2 == 0 else "1990", "0.1", "Ioc"))
    lines = (tmp_path / HISTORY).read_bytes().count(b"\n")
    assert lines <= 2 * 6 + 2
    again = SimVenue.open(config(fills_kept=3, orders_kept=3, funding_kept=3), tmp_path)
    assert fills(again) == fills(sim)
    assert again.info({"type": "historicalOrders", "user": ALICE}) == sim.info(
        {"type": "historicalOrders", "user": ALICE}
    )


def test_the_core_file_is_plain_json(tmp_path: Path) -> None:
    eventful(tmp_path)
    core = json.loads((tmp_path / CORE).read_text())
    assert core["accounts"][ALICE]["funded"] is True
    assert isinstance(core["seq"], int)
    assert core["seq"] > 0


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_and_inputs_give_identical_outputs() -> None:
    first, second = (
        eventful(None, seed=11, book=SimConfig().book),
        eventful(None, seed=11, book=SimConfig().book),
    )
    assert json.dumps(snapshot(first)) == json.dumps(snapshot(second))
    assert first.info({"type": "metaAndAssetCtxs"}) == second.info({"type": "metaAndAssetCtxs"})


def test_a_different_seed_gives_different_book_sizes() -> None:
    def sizes(seed: int) -> list[str]:
        sim = SimVenue.open(SimConfig(seed=seed), None)
        sim.advance(T0, {"ETH": Decimal(2000)})
        book = sim.info({"type": "l2Book", "coin": "ETH"})
        return [level["sz"] for side in book["levels"] for level in side]

    assert sizes(1) == sizes(1)
    assert sizes(1) != sizes(2)


def test_the_book_is_redrawn_on_every_price_update_but_the_same_for_the_same_update() -> None:
    def book_after(updates: int) -> Any:
        sim = SimVenue.open(SimConfig(seed=3), None)
        for n in range(updates):
            sim.advance(T0 + n, {"ETH": D(2000)})
        return sim.info({"type": "l2Book", "coin": "ETH"})["levels"]

    assert book_after(2) == book_after(2)
    assert book_after(2) != book_after(3)


def test_time_never_goes_backwards_but_prices_still_update() -> None:
    sim = venue()
    sim.advance(T0 - 5000, prices({"ETH": "2100"}))
    assert sim.now_ms == T0
    assert sim.info({"type": "allMids"})["ETH"] == "2100.0"
