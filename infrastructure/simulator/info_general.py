"""/info types the simulator has little to say about, answered in the venue's shapes.

Hyperliquid answers every documented ``/info`` type; clients (ccxt's ``fetch_status``,
``fetch_time``, its unified-account check, spot and HIP-3 market loading) send several of
them on ordinary calls. Where the simulator has no such thing (spot balances, vaults,
sub-accounts, staking, TWAPs, builder fees, referrals) the answer is the venue's answer for
an account or market that has none. The shapes follow the API documentation.
"""

from __future__ import annotations

from typing import Any

from infrastructure.simulator.info_fields import Request, text_field, usd, user_field
from infrastructure.simulator.margin import summarize
from infrastructure.simulator.rules import wire
from infrastructure.simulator.state import Account
from infrastructure.simulator.trading import Venue


def exchange_status(venue: Venue, _: Request) -> dict[str, Any]:
    return {"time": venue.now, "specialStatuses": None}


def user_abstraction(venue: Venue, request: Request) -> str:
    user_field(request)  # the venue requires it
    return "default"  # separate perp and spot accounts: the classic (and simulated) mode


def perp_dexs(_venue: Venue, _: Request) -> list[Any]:
    return [None]  # only the main perp dex (index 0 is always null)


def spot_meta_and_asset_ctxs(_venue: Venue, _: Request) -> list[Any]:
    return [{"universe": [], "tokens": []}, []]


def spot_clearinghouse_state(venue: Venue, request: Request) -> dict[str, Any]:
    user_field(request)
    return {"balances": []}


def predicted_fundings(venue: Venue, _: Request) -> list[Any]:
    """The newest hourly rate of each coin as the next one (the simulator's funding)."""
    next_hour = (venue.now // 3_600_000 + 1) * 3_600_000
    rows = []
    for asset in venue.assets:
        history = venue.journal.rates.get(asset.name, ())
        rate = wire(history[-1].rate) if history else "0.0"
        venue_row = {"fundingRate": rate, "nextFundingTime": next_hour, "fundingIntervalHours": 1}
        rows.append([asset.name, [["HlPerp", venue_row]]])
    return rows


def max_builder_fee(_venue: Venue, request: Request) -> int:
    user_field(request)
    text_field(request, "builder")
    return 0  # no builder fee approved


def referral(_venue: Venue, request: Request) -> dict[str, Any]:
    user_field(request)
    return {
        "referredBy": None,
        "cumVlm": "0.0",
        "unclaimedRewards": "0.0",
        "claimedRewards": "0.0",
        "builderRewards": "0.0",
        "referrerState": {"stage": "needToTrade", "data": {"required": "10000.0"}},
        "rewardHistory": [],
    }


def sub_accounts(_venue: Venue, request: Request) -> None:
    user_field(request)
    return  # the venue answers null for a user without sub-accounts


def user_vault_equities(_venue: Venue, request: Request) -> list[Any]:
    user_field(request)
    return []


def vault_details(_venue: Venue, request: Request) -> None:
    text_field(request, "vaultAddress")
    return  # no such vault


def portfolio(venue: Venue, request: Request) -> list[Any]:
    acct = venue.core.accounts.get(user_field(request)) or Account()
    value = usd(summarize(acct, venue.marks(), venue.by_coin).total_value)
    now = venue.now
    history = {"accountValueHistory": [[now, value]], "pnlHistory": [[now, "0.0"]], "vlm": "0.0"}
    periods = ("day", "week", "month", "allTime", "perpDay", "perpWeek", "perpMonth", "perpAllTime")
    return [[period, history] for period in periods]


def delegations(_venue: Venue, request: Request) -> list[Any]:
    user_field(request)
    return []


def delegator_summary(_venue: Venue, request: Request) -> dict[str, Any]:
    user_field(request)
    return {
        "delegated": "0.0",
        "undelegated": "0.0",
        "totalPendingWithdrawal": "0.0",
        "nPendingWithdrawals": 0,
    }


def empty_user_list(_venue: Venue, request: Request) -> list[Any]:
    """delegatorHistory, delegatorRewards, twapHistory, userTwapSliceFills: nothing yet."""
    user_field(request)
    return []


def perps_at_open_interest_cap(_venue: Venue, _: Request) -> list[str]:
    return []


def margin_table(_venue: Venue, request: Request) -> dict[str, Any]:
    table_id = request.get("id")
    return {
        "description": "" if table_id is None else f"table {table_id}",
        "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 50}],
    }


def user_to_multi_sig_signers(_venue: Venue, request: Request) -> None:
    user_field(request)
    return  # not a multi-sig user
