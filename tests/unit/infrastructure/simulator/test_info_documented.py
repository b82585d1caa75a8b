"""Every documented /info type is answered in the venue's shape (the simulator has no spot,
vaults, staking or TWAPs: it answers as the venue does for an account without them)."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.simulator.engine import InfoRequestError
from infrastructure.simulator.info import HANDLERS
from tests.unit.infrastructure.simulator.simkit import ALICE, T0, venue

USER = {"user": ALICE}
#: type → (extra request fields, a check of the answer's shape).
DOCUMENTED: dict[str, tuple[dict[str, Any], Any]] = {
    "meta": ({}, lambda a: {"universe", "marginTables"} <= set(a)),
    "metaAndAssetCtxs": ({}, lambda a: isinstance(a, list) and len(a) == 2),
    "allMids": ({}, lambda a: isinstance(a["ETH"], str)),
    "l2Book": ({"coin": "ETH"}, lambda a: len(a["levels"]) == 2),
    "fundingHistory": ({"coin": "ETH", "startTime": 0}, lambda a: isinstance(a, list)),
    "spotMeta": ({}, lambda a: a == {"universe": [], "tokens": []}),
    "clearinghouseState": (USER, lambda a: "marginSummary" in a),
    "activeAssetData": ({**USER, "coin": "ETH"}, lambda a: a["coin"] == "ETH"),
    "userRole": (USER, lambda a: "role" in a),
    "extraAgents": (USER, lambda a: isinstance(a, list)),
    "userRateLimit": (USER, lambda a: "nRequestsCap" in a),
    "userFees": (USER, lambda a: "userCrossRate" in a),
    "openOrders": (USER, lambda a: isinstance(a, list)),
    "frontendOpenOrders": (USER, lambda a: isinstance(a, list)),
    "historicalOrders": (USER, lambda a: isinstance(a, list)),
    "orderStatus": ({**USER, "oid": 1}, lambda a: a["status"] == "unknownOid"),
    "userFills": (USER, lambda a: isinstance(a, list)),
    "userFillsByTime": ({**USER, "startTime": 0}, lambda a: isinstance(a, list)),
    "userFunding": ({**USER, "startTime": 0}, lambda a: isinstance(a, list)),
    "userNonFundingLedgerUpdates": ({**USER, "startTime": 0}, lambda a: isinstance(a, list)),
    "exchangeStatus": (
        {},
        lambda a: set(a) == {"time", "specialStatuses"} and a["specialStatuses"] is None,
    ),
    "userAbstraction": (USER, lambda a: a == "default"),
    "perpDexs": ({}, lambda a: a == [None]),
    "spotMetaAndAssetCtxs": ({}, lambda a: a == [{"universe": [], "tokens": []}, []]),
    "spotClearinghouseState": (USER, lambda a: a == {"balances": []}),
    "predictedFundings": (
        {},
        lambda a: a[0][0] == "BTC" and a[0][1][0][0] == "HlPerp" and "fundingRate" in a[0][1][0][1],
    ),
    "maxBuilderFee": ({**USER, "builder": "0x" + "d4" * 20}, lambda a: a == 0),
    "referral": (USER, lambda a: a["referredBy"] is None and "referrerState" in a),
    "subAccounts": (USER, lambda a: a is None),
    "userVaultEquities": (USER, lambda a: a == []),
    "vaultDetails": ({"vaultAddress": "0x" + "e5" * 20}, lambda a: a is None),
    "portfolio": (USER, lambda a: [p for p, _ in a][:4] == ["day", "week", "month", "allTime"]),
    "delegations": (USER, lambda a: a == []),
    "delegatorSummary": (USER, lambda a: a["nPendingWithdrawals"] == 0),
    "delegatorHistory": (USER, lambda a: a == []),
    "delegatorRewards": (USER, lambda a: a == []),
    "twapHistory": (USER, lambda a: a == []),
    "userTwapSliceFills": (USER, lambda a: a == []),
    "perpsAtOpenInterestCap": ({}, lambda a: a == []),
    "marginTable": ({"id": 50}, lambda a: "marginTiers" in a),
    "userToMultiSigSigners": (USER, lambda a: a is None),
}


def test_every_handler_is_documented_here_and_every_documented_type_is_handled() -> None:
    assert set(HANDLERS) | {"candleSnapshot"} == set(DOCUMENTED) | {"candleSnapshot"}


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_each_documented_type_answers_in_the_venue_shape(kind: str) -> None:
    fields, check = DOCUMENTED[kind]
    answer = venue().info({"type": kind, **fields})
    assert check(answer), answer


def test_exchange_status_gives_the_venue_time() -> None:
    sim = venue()
    assert sim.info({"type": "exchangeStatus"})["time"] == sim.now_ms == T0


@pytest.mark.parametrize("kind", ["userAbstraction", "spotClearinghouseState", "maxBuilderFee"])
def test_a_missing_user_is_the_venue_s_deserialisation_error(kind: str) -> None:
    with pytest.raises(InfoRequestError, match="Failed to deserialize"):
        venue().info({"type": kind})


def test_an_unknown_type_is_the_venue_s_error_not_a_framework_s() -> None:
    with pytest.raises(InfoRequestError, match="Failed to deserialize the JSON body"):
        venue().info({"type": "noSuchThing"})
