"""/info about an account: clearinghouseState, activeAssetData, roles, agents, limits, fees."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from infrastructure.simulator import auth
from infrastructure.simulator.config import SimAsset
from infrastructure.simulator.info_fields import PX, RATIO, Request, text_field, usd, user_field
from infrastructure.simulator.margin import (
    available_margin,
    entry_px,
    isolated_margin,
    leverage_of,
    liquidation_price,
    maintenance,
    mark_of,
    notional,
    summarize,
    upnl,
)
from infrastructure.simulator.rules import ZERO, floor_size, wire, wire_rounded
from infrastructure.simulator.state import Account, Position
from infrastructure.simulator.trading import Venue

FAR_FUTURE_MS = 253_402_300_799_999  # 9999-12-31: validUntil of an agent approved without one
VIP_TIERS = (  # 14-day volume cut-off, taker, maker (notes §6)
    ("5000000.0", "0.0004", "0.00012"),
    ("25000000.0", "0.00035", "0.00008"),
    ("100000000.0", "0.0003", "0.00004"),
    ("500000000.0", "0.00028", "0.0"),
    ("2000000000.0", "0.00026", "0.0"),
    ("7000000000.0", "0.00024", "0.0"),
)


def _leverage(acct: Account, asset: SimAsset, pos: Position | None) -> dict[str, Any]:
    chosen = leverage_of(acct, asset)
    if chosen.cross:
        return {"type": "cross", "value": chosen.value}
    raw = pos.iso_raw if pos is not None else ZERO
    return {"type": "isolated", "value": chosen.value, "rawUsd": usd(raw)}


def _summary(value: Decimal, ntl: Decimal, raw: Decimal, used: Decimal) -> dict[str, str]:
    return {
        "accountValue": usd(value),
        "totalNtlPos": usd(ntl),
        "totalRawUsd": usd(raw),
        "totalMarginUsed": usd(used),
    }


def clearinghouse_state(venue: Venue, request: Request) -> dict[str, Any]:
    acct = venue.core.accounts.get(user_field(request)) or Account()
    marks = venue.marks()
    summary = summarize(acct, marks, venue.by_coin)
    positions = []
    for asset in venue.assets:
        pos = acct.positions.get(asset.name)
        if pos is None:
            continue
        mark = mark_of(marks, asset.name, pos)
        value = notional(pos, mark)
        lev = leverage_of(acct, asset).value
        pnl = upnl(pos, mark)
        if pos.isolated:
            used = isolated_margin(pos, mark)
            spare = used - maintenance(pos, mark, asset)
        else:
            used = value / lev
            spare = summary.cross_value - summary.cross_mm
        liq = liquidation_price(mark, pos.szi, spare, asset)
        positions.append(
            {
                "type": "oneWay",
                "position": {
                    "coin": asset.name,
                    "szi": wire(pos.szi),
                    "leverage": _leverage(acct, asset, pos),
                    "entryPx": wire_rounded(entry_px(pos), PX),
                    "positionValue": usd(value),
                    "unrealizedPnl": usd(pnl),
                    "returnOnEquity": wire_rounded(pnl * lev / abs(pos.basis), RATIO),
                    "liquidationPx": None if liq is None else wire_rounded(liq, PX),
                    "marginUsed": usd(used),
                    "maxLeverage": asset.max_leverage,
                    "cumFunding": {
                        "allTime": usd(acct.funding_all.get(asset.name, ZERO)),
                        "sinceOpen": usd(pos.funding_open),
                        "sinceChange": usd(pos.funding_change),
                    },
                },
            }
        )
    return {
        "marginSummary": _summary(
            summary.total_value, summary.total_ntl, summary.total_raw, summary.total_margin
        ),
        "crossMarginSummary": _summary(
            summary.cross_value, summary.cross_ntl, summary.cross_raw, summary.cross_im
        ),
        "crossMaintenanceMarginUsed": usd(summary.cross_mm),
        "withdrawable": usd(summary.withdrawable),
        "assetPositions": positions,
        "time": venue.now,
    }


def active_asset_data(venue: Venue, request: Request) -> dict[str, Any] | None:
    """``availableToTrade``: notional (USD) each side could add with free collateral at the
    chosen leverage, plus what it could close; ``maxTradeSzs`` the same in coins."""
    user = user_field(request)
    coin = text_field(request, "coin")
    asset = venue.by_coin.get(coin)
    if asset is None:
        return None
    acct = venue.core.accounts.get(user) or Account()
    mark = venue.prices(coin).mark or ZERO
    pos = acct.positions.get(coin)
    lev = leverage_of(acct, asset).value
    free = max(ZERO, available_margin(acct, venue.marks(), venue.by_coin)) * lev
    closable_buy = closable_sell = ZERO
    if pos is not None:
        closable_buy = -pos.szi * mark if pos.szi < 0 else ZERO
        closable_sell = pos.szi * mark if pos.szi > 0 else ZERO
    sides = (free + closable_buy, free + closable_sell)
    sizes = [floor_size(side / mark, asset.sz_decimals) if mark > 0 else ZERO for side in sides]
    return {
        "user": user,
        "coin": coin,
        "leverage": _leverage(acct, asset, pos),
        "maxTradeSzs": [wire(size) for size in sizes],
        "availableToTrade": [usd(side) for side in sides],
        "markPx": wire(mark),
    }


def user_role(venue: Venue, request: Request) -> dict[str, object]:
    return auth.role(venue.core, user_field(request))


def extra_agents(venue: Venue, request: Request) -> list[dict[str, Any]]:
    user = user_field(request)
    return [
        {
            "name": agent.name,
            "address": address,
            "validUntil": agent.valid_until if agent.valid_until is not None else FAR_FUTURE_MS,
        }
        for address, agent in venue.core.agents.items()
        if agent.master == user and agent.name and auth.live(agent, venue.now)
    ]


def user_rate_limit(venue: Venue, request: Request) -> dict[str, Any]:
    acct = venue.core.accounts.get(user_field(request)) or Account()
    return {
        "cumVlm": usd(acct.volume),
        "nRequestsUsed": acct.requests,
        "nRequestsCap": 10_000 + int(acct.volume),
        "nRequestsSurplus": 0,
    }


def user_fees(venue: Venue, request: Request) -> dict[str, Any]:
    acct = venue.core.accounts.get(user_field(request)) or Account()
    taker, maker = wire(venue.config.taker_fee), wire(venue.config.maker_fee)
    return {
        "dailyUserVlm": [
            {
                "date": day,
                "userCross": usd(cross),
                "userAdd": usd(add),
                "exchange": usd(cross + add),
            }
            for day, (cross, add) in sorted(acct.daily_volume.items())[-15:]
        ],
        "feeSchedule": {
            "cross": taker,
            "add": maker,
            "spotCross": "0.0007",
            "spotAdd": "0.0004",
            "tiers": {
                "vip": [
                    {
                        "ntlCutoff": cut,
                        "cross": cross,
                        "add": add,
                        "spotCross": cross,
                        "spotAdd": add,
                    }
                    for cut, cross, add in VIP_TIERS
                ],
                "mm": [],
            },
            "referralDiscount": "0.04",
            "stakingDiscountTiers": [],
        },
        "userCrossRate": taker,
        "userAddRate": maker,
        "userSpotCrossRate": "0.0007",
        "userSpotAddRate": "0.0004",
        "activeReferralDiscount": "0.0",
        "trial": None,
        "feeTrialReward": "0.0",
        "nextTrialAvailableTimestamp": None,
        "stakingLink": None,
        "activeStakingDiscount": {"bpsOfMaxSupply": "0.0", "discount": "0.0"},
    }
