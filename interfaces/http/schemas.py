"""Response types: each view document plus ``serverTime`` (unix ms)."""

from __future__ import annotations

import msgspec

from projections.documents import (
    AccountTotalsDocument,
    AnalyticsDocument,
    ConversationsDocument,
    CryptoPricesDocument,
    LeaderboardDocument,
    PositionsDocument,
    SinceInceptionDocument,
    StatusDocument,
    TradesDocument,
)


class CryptoPricesResponse(CryptoPricesDocument, kw_only=True):
    serverTime: int = 0


class AccountTotalsResponse(AccountTotalsDocument, kw_only=True):
    serverTime: int = 0


class PositionsResponse(PositionsDocument, kw_only=True):
    serverTime: int = 0


class LeaderboardResponse(LeaderboardDocument, kw_only=True):
    serverTime: int = 0


class SinceInceptionResponse(SinceInceptionDocument, kw_only=True):
    serverTime: int = 0


class TradesResponse(TradesDocument, kw_only=True):
    serverTime: int = 0


class AnalyticsResponse(AnalyticsDocument, kw_only=True):
    serverTime: int = 0


class ConversationsResponse(ConversationsDocument, kw_only=True):
    serverTime: int = 0


class StatusResponse(StatusDocument, kw_only=True):
    """nof0's own: paused traders and why, refusals, venue findings and transfers."""

    serverTime: int = 0


class Health(msgspec.Struct):
    status: str
    views: str
    redis: str
    serverTime: int


class ErrorBody(msgspec.Struct):
    status_code: int
    detail: str
