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


class LeaseHolder(msgspec.Struct):
    """Who holds a lease now, when several engines share one PostgreSQL."""

    name: str  # trader:<config id>, venue:<provider> or engine:<owner>
    owner: str  # the holding engine's owner id
    token: int  # the fencing token: it rises at every takeover
    expiresInS: float  # seconds left on the database's clock unless renewed


class StatusResponse(StatusDocument, kw_only=True):
    """nof0's own: paused traders and why, refusals, venue findings and transfers; with
    leases on, which engine holds which trader now (read live, not from the views)."""

    engine: str | None = None  # this engine's owner id (None: one engine, no leases)
    leases: list[LeaseHolder] | None = None
    leasesError: str | None = None  # why the lease table could not be read
    serverTime: int = 0


class Health(msgspec.Struct):
    status: str
    views: str
    redis: str
    serverTime: int


class ErrorBody(msgspec.Struct):
    status_code: int
    detail: str
