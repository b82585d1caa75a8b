"""/info answers in Hyperliquid's wire format: JSON-native values, numbers as decimal strings.

Read-only: nothing here creates an account or changes the venue. An unknown request type or a
wrong shape raises ``InfoRequestError`` (HTTP 422 at the server); unknown keys are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from infrastructure.simulator import info_account, info_general, info_market, info_orders
from infrastructure.simulator.errors import InfoRequestError
from infrastructure.simulator.info_fields import Request
from infrastructure.simulator.info_market import CandleSource
from infrastructure.simulator.trading import Venue

__all__ = ["HANDLERS", "CandleSource", "answer"]

Handler = Callable[[Venue, Request], Any]

HANDLERS: dict[str, Handler] = {
    "meta": info_market.meta,
    "metaAndAssetCtxs": info_market.meta_and_asset_ctxs,
    "allMids": info_market.all_mids,
    "l2Book": info_market.l2_book,
    "fundingHistory": info_market.funding_history,
    "spotMeta": info_market.spot_meta,
    "clearinghouseState": info_account.clearinghouse_state,
    "activeAssetData": info_account.active_asset_data,
    "userRole": info_account.user_role,
    "extraAgents": info_account.extra_agents,
    "userRateLimit": info_account.user_rate_limit,
    "userFees": info_account.user_fees,
    "openOrders": info_orders.open_orders,
    "frontendOpenOrders": info_orders.frontend_open_orders,
    "historicalOrders": info_orders.historical_orders,
    "orderStatus": info_orders.order_status,
    "userFills": info_orders.user_fills,
    "userFillsByTime": info_orders.user_fills_by_time,
    "userFunding": info_orders.user_funding,
    "userNonFundingLedgerUpdates": info_orders.user_ledger,
    # Answered in the venue's shapes for an account or market that has none of the thing.
    "exchangeStatus": info_general.exchange_status,
    "userAbstraction": info_general.user_abstraction,
    "perpDexs": info_general.perp_dexs,
    "spotMetaAndAssetCtxs": info_general.spot_meta_and_asset_ctxs,
    "spotClearinghouseState": info_general.spot_clearinghouse_state,
    "predictedFundings": info_general.predicted_fundings,
    "maxBuilderFee": info_general.max_builder_fee,
    "referral": info_general.referral,
    "subAccounts": info_general.sub_accounts,
    "userVaultEquities": info_general.user_vault_equities,
    "vaultDetails": info_general.vault_details,
    "portfolio": info_general.portfolio,
    "delegations": info_general.delegations,
    "delegatorSummary": info_general.delegator_summary,
    "delegatorHistory": info_general.empty_user_list,
    "delegatorRewards": info_general.empty_user_list,
    "twapHistory": info_general.empty_user_list,
    "userTwapSliceFills": info_general.empty_user_list,
    "perpsAtOpenInterestCap": info_general.perps_at_open_interest_cap,
    "marginTable": info_general.margin_table,
    "userToMultiSigSigners": info_general.user_to_multi_sig_signers,
}


def answer(venue: Venue, request: object, source: CandleSource | None) -> Any:
    if not isinstance(request, Mapping):
        raise InfoRequestError()
    kind = request.get("type")
    if kind == "candleSnapshot":
        return info_market.candle_snapshot(venue, request, source)
    handler = HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise InfoRequestError()
    return handler(venue, request)
