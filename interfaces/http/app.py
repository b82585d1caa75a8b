"""The query API: nof1-compatible routes over the views, built in a factory.

The API holds no business state: every response is a view document (Redis first, the
JSON files when Redis is absent or down) with ``serverTime`` added.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CollectorRegistry

from application.leases import Lease
from interfaces.http.conditional import conditional_get
from interfaces.http.control import ControlAccess, ControlController
from interfaces.http.dashboard import dashboard
from interfaces.http.metrics import metrics_route
from interfaces.http.schemas import (
    AccountTotalsResponse,
    AnalyticsResponse,
    ConversationsResponse,
    CryptoPricesResponse,
    Health,
    LeaderboardResponse,
    LeaseHolder,
    PositionsResponse,
    SinceInceptionResponse,
    StatusResponse,
    TradesResponse,
)
from projections.reading import DocumentReader

T = TypeVar("T", bound=msgspec.Struct)
log = logging.getLogger("nof0.api")
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ViewsNotReady(HTTPException):
    status_code = 503


@dataclass(frozen=True)
class LeaseBoard:
    """This engine's owner id and a reader of the live leases (several engines)."""

    owner: str
    live: Callable[[], list[Lease]]


def server_time() -> int:
    return int(time.time() * 1000)


def _reader(state: State) -> DocumentReader:
    reader: DocumentReader = state.reader
    return reader


async def load(state: State, filename: str, kind: type[T]) -> T:
    """A view document as ``kind`` (a response type), stamped with ``serverTime``."""
    document = await _read(state, filename, kind)
    if document is None:
        raise ViewsNotReady(
            detail=f"{filename} has not been written yet; the views are catching up"
        )
    return document


async def _read(state: State, filename: str, kind: type[T]) -> T | None:
    try:
        raw = await _reader(state).read(filename)
    except ValueError as exc:  # a view file that is not where views live (e.g. a symlink out)
        log.error("refused to read %s: %s", filename, exc)
        raise ViewsNotReady(detail=f"{filename} cannot be read") from exc
    if raw is None:
        return None
    try:
        document = msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise ViewsNotReady(detail=f"{filename} could not be read: {exc}") from exc
    return msgspec.structs.replace(document, serverTime=server_time())


class ApiController(Controller):
    path = "/api"
    tags = ["views"]  # noqa: RUF012 - Litestar's declared type
    middleware = [conditional_get]  # noqa: RUF012 - ETag / If-None-Match for pollsters

    @get("/crypto-prices", summary="Latest price of every coin")
    async def crypto_prices(self, state: State) -> CryptoPricesResponse:
        return await load(state, "crypto-prices.json", CryptoPricesResponse)

    @get("/account-totals", summary="Hourly account rows per trader (and the BTC baseline)")
    async def account_totals(
        self,
        state: State,
        last_hourly_marker: Annotated[
            int | None,
            QueryParameter(
                name="lastHourlyMarker",
                ge=0,
                description="Only rows whose hourly marker is at least this value",
            ),
        ] = None,
    ) -> AccountTotalsResponse:
        response = await load(state, "account-totals.json", AccountTotalsResponse)
        if last_hourly_marker is not None:
            response.accountTotals = [
                row
                for row in response.accountTotals
                if row.since_inception_hourly_marker >= last_hourly_marker
            ]
        return response

    @get("/positions", summary="Open positions per trader")
    async def positions(
        self,
        state: State,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100_000, description="Maximum positions returned")
        ] = 1000,
    ) -> PositionsResponse:
        response = await load(state, "positions.json", PositionsResponse)
        remaining = limit
        for entry in response.accountTotals:
            if remaining <= 0:
                entry.positions = {}
                continue
            if len(entry.positions) > remaining:
                entry.positions = dict(list(entry.positions.items())[:remaining])
            remaining -= len(entry.positions)
        return response

    @get("/trades", summary="Closed trades, net of fees and funding")
    async def trades(self, state: State) -> TradesResponse:
        return await load(state, "trades.json", TradesResponse)

    @get("/leaderboard", summary="Traders ranked by equity")
    async def leaderboard(self, state: State) -> LeaderboardResponse:
        return await load(state, "leaderboard.json", LeaderboardResponse)

    @get("/since-inception-values", summary="Value since inception per trader and baseline")
    async def since_inception(self, state: State) -> SinceInceptionResponse:
        return await load(state, "since-inception-values.json", SinceInceptionResponse)

    @get("/analytics", summary="Breakdown tables for every trader")
    async def analytics(self, state: State) -> AnalyticsResponse:
        return await load(state, "analytics.json", AnalyticsResponse)

    @get("/analytics/{model_id:str}", summary="Breakdown tables for one trader")
    async def model_analytics(
        self,
        state: State,
        model_id: Annotated[str, PathParameter(description="A trader id from the leaderboard")],
    ) -> AnalyticsResponse:
        if not MODEL_ID.fullmatch(model_id):
            raise ValidationException(
                detail="model id must use letters, digits, '.', '_' or '-' (at most 64)"
            )
        everyone = await load(state, "analytics.json", AnalyticsResponse)
        if model_id not in {item.model_id for item in everyone.analytics}:
            raise NotFoundException(detail=f"no trader {model_id!r}")
        document = await _read(state, f"analytics-{model_id}.json", AnalyticsResponse)
        if document is None:
            mine = [item for item in everyone.analytics if item.model_id == model_id]
            return AnalyticsResponse(analytics=mine, serverTime=server_time())
        return document

    @get("/conversations", summary="Latest model invocations per trader")
    async def conversations(self, state: State) -> ConversationsResponse:
        return await load(state, "conversations.json", ConversationsResponse)

    @get(
        "/status",
        summary="What needs attention: paused traders and why, refusals, venue findings",
    )
    async def status(self, state: State) -> StatusResponse:
        response = await load(state, "status.json", StatusResponse)
        board: LeaseBoard | None = state.leases
        if board is None:
            return response
        response.engine = board.owner
        try:
            live = await asyncio.to_thread(board.live)  # a database round trip
        except Exception as exc:  # noqa: BLE001 - the views still answer; the error is named
            log.warning("could not read the leases: %r", exc)
            response.leasesError = f"the lease table could not be read: {type(exc).__name__}"
            return response
        response.leases = [
            LeaseHolder(lease.name, lease.owner, lease.token, round(lease.remaining, 1))
            for lease in live
        ]
        return response


@get("/healthz", summary="Liveness and where the views come from", tags=["ops"])
async def healthz(state: State) -> Health:
    reader = _reader(state)
    views = "missing"
    raw = await reader.read("crypto-prices.json")
    if raw is not None:
        views = f"ok ({reader.last_source})"
    return Health(
        status="ok", views=views, redis=await reader.redis_status(), serverTime=server_time()
    )


#: A client error repeats at most this much of what was sent (a 100 kB query must not come
#: back as a 100 kB error).
ECHO_CHARS = 200


def bounded(text: str, limit: int = ECHO_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _client_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": 400, "detail": bounded(str(exc.detail))}
    if isinstance(exc.extra, list):
        body["extra"] = [
            {k: bounded(str(getattr(v, "value", v))) for k, v in item.items()}
            if isinstance(item, dict)
            else item
            for item in exc.extra[:20]
        ]
    return Response(body, status_code=400)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled error on %s: %r", request.url.path, exc, exc_info=exc)
    return Response({"status_code": 500, "detail": "internal error"}, status_code=500)


def create_app(
    reader_factory: Callable[[], DocumentReader],
    *,
    title: str = "nof0",
    version: str = "0.1.0",
    debug: bool = False,
    metrics: bool = True,
    control: ControlAccess | None = None,
    engine_metrics: CollectorRegistry | None = None,
    leases: LeaseBoard | None = None,
) -> Litestar:
    """Build the API; the reader is opened in the lifespan and closed after it.

    ``control``: the operator commands and their credentials (``None``: the control routes
    answer that control is off). ``engine_metrics``: the engine's registry, exported on
    ``/metrics`` beside the API's own request metrics. ``leases``: several engines share
    the store; ``/api/status`` says which engine holds which lease."""

    @asynccontextmanager
    async def views(app: Litestar) -> AsyncIterator[None]:
        app.state.control = control
        app.state.leases = leases
        app.state.reader = reader_factory()
        try:
            yield
        finally:
            await app.state.reader.close()

    handlers: list[Any] = [ApiController, ControlController, healthz, dashboard]
    middleware: list[Any] = []
    if metrics:
        prometheus = PrometheusConfig(app_name="nof0", prefix="nof0_api", group_path=True)
        handlers.append(metrics_route(engine_metrics))
        middleware.append(prometheus.middleware)
    return Litestar(
        route_handlers=handlers,
        lifespan=[views],
        middleware=middleware,
        openapi_config=OpenAPIConfig(title=title, version=version),
        exception_handlers={ValidationException: _client_error, 500: _internal_error},
        logging_config=None,  # the process configures logging, not the framework
        debug=debug,
    )
