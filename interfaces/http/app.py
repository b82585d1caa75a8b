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
from typing import Annotated, Any, ClassVar, TypeVar, cast

import msgspec
from litestar import Controller, Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CollectorRegistry, Counter

from application.leases import Lease
from interfaces.http.conditional import conditional_get
from interfaces.http.control import ControlAccess, ControlController
from interfaces.http.dashboard import dashboard
from interfaces.http.encoded import Encoded, EncodedView, EncodedViews, representation
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
from interfaces.http.statistics import StatisticsCache, StatisticsResponse
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


def _decode(raw: bytes, filename: str, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError as exc:
        raise ViewsNotReady(detail=f"{filename} could not be read: {exc}") from exc


async def encoded(state: State, filename: str, kind: type[msgspec.Struct]) -> Encoded:
    """The document decoded and encoded, again only when it has changed."""
    entry = await written(state, filename, kind)
    if entry is None:
        raise ViewsNotReady(
            detail=f"{filename} has not been written yet; the views are catching up"
        )
    return entry


async def written(state: State, filename: str, kind: type[msgspec.Struct]) -> Encoded | None:
    """As :func:`encoded`; None when the view has not been written yet."""
    cache: EncodedViews = state.encoded
    try:
        marker = await _reader(state).marker(filename)
    except ValueError as exc:
        log.error("refused to read %s: %s", filename, exc)
        raise ViewsNotReady(detail=f"{filename} cannot be read") from exc
    entry = cache.get(filename, kind, marker)
    if entry is not None:
        return entry
    try:
        raw, marker = await _reader(state).read_marked(filename)
    except ValueError as exc:  # a view file that is not where views live (e.g. a symlink out)
        log.error("refused to read %s: %s", filename, exc)
        raise ViewsNotReady(detail=f"{filename} cannot be read") from exc
    if raw is None:
        return None
    entry = cache.unchanged(filename, kind, marker, raw)
    if entry is not None:
        return entry
    return cache.put(filename, kind, marker, raw, _decode(raw, filename, kind))


def answer(request: Request[Any, Any, Any], view: EncodedView) -> Response[bytes]:
    """The encoded view with a fresh ``serverTime`` (see ``representation``)."""
    status, headers, body = representation(
        view,
        request.headers.get("if-none-match"),
        request.headers.get("accept-encoding"),
        server_time(),
    )
    return Response(
        body,
        status_code=status,
        headers={
            key.decode(): value.decode() for key, value in headers if key != b"content-length"
        },
        media_type=MediaType.JSON,
    )


async def serve_view(
    request: Request[Any, Any, Any], filename: str, kind: type[msgspec.Struct]
) -> Response[bytes]:
    return answer(request, (await encoded(request.app.state, filename, kind)).view)


def documented(kind: type[msgspec.Struct]) -> dict[int, ResponseSpec]:
    """OpenAPI: the route answers ``kind``, although the handler hands over its bytes."""
    return {200: ResponseSpec(data_container=kind, description="the view document")}


class ApiController(Controller):
    """The view routes. A route without parameters answers the encoded view as it is
    (``serve_view``); a filter is applied to a copy of the document decoded once."""

    path = "/api"
    tags = ["views"]  # noqa: RUF012 - Litestar's declared type
    middleware = [conditional_get]  # noqa: RUF012 - ETag / If-None-Match for pollsters

    @get(
        "/crypto-prices",
        summary="Latest price of every coin",
        responses=documented(CryptoPricesResponse),
    )
    async def crypto_prices(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "crypto-prices.json", CryptoPricesResponse)

    @get(
        "/account-totals",
        summary="Hourly account rows per trader (and the BTC baseline)",
        responses=documented(AccountTotalsResponse),
    )
    async def account_totals(
        self,
        request: Request[Any, Any, Any],
        last_hourly_marker: Annotated[
            int | None,
            QueryParameter(
                name="lastHourlyMarker",
                ge=0,
                description="Only rows whose hourly marker is at least this value",
            ),
        ] = None,
    ) -> Response[AccountTotalsResponse] | Response[bytes]:
        if last_hourly_marker is None:
            return await serve_view(request, "account-totals.json", AccountTotalsResponse)
        entry = await encoded(request.app.state, "account-totals.json", AccountTotalsResponse)
        everything = cast(AccountTotalsResponse, entry.document)
        rows = [
            row
            for row in everything.accountTotals
            if row.since_inception_hourly_marker >= last_hourly_marker
        ]
        return Response(
            msgspec.structs.replace(everything, accountTotals=rows, serverTime=server_time())
        )

    @get("/positions", summary="Open positions per trader", responses=documented(PositionsResponse))
    async def positions(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[
            int, QueryParameter(ge=1, le=100_000, description="Maximum positions returned")
        ] = 1000,
    ) -> Response[PositionsResponse] | Response[bytes]:
        entry = await encoded(request.app.state, "positions.json", PositionsResponse)
        everything = cast(PositionsResponse, entry.document)
        if sum(len(item.positions) for item in everything.accountTotals) <= limit:
            return answer(request, entry.view)
        remaining = limit
        kept = []
        for item in everything.accountTotals:
            positions = dict(list(item.positions.items())[: max(remaining, 0)])
            remaining -= len(positions)
            kept.append(msgspec.structs.replace(item, positions=positions))
        return Response(
            msgspec.structs.replace(everything, accountTotals=kept, serverTime=server_time())
        )

    @get(
        "/trades",
        summary="Closed trades, net of fees and funding",
        responses=documented(TradesResponse),
    )
    async def trades(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "trades.json", TradesResponse)

    @get(
        "/leaderboard",
        summary="Traders ranked by equity",
        responses=documented(LeaderboardResponse),
    )
    async def leaderboard(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "leaderboard.json", LeaderboardResponse)

    @get(
        "/since-inception-values",
        summary="Value since inception per trader and baseline",
        responses=documented(SinceInceptionResponse),
    )
    async def since_inception(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "since-inception-values.json", SinceInceptionResponse)

    @get(
        "/statistics",
        summary="Every trader's return, Sharpe and Sortino with 95 % bootstrap intervals, "
        "trade KPIs, the P&L split and a verdict against BTC buy-and-hold",
    )
    async def statistics(self, request: Request[Any, Any, Any]) -> StatisticsResponse:
        state = request.app.state
        totals = await encoded(state, "account-totals.json", AccountTotalsResponse)
        trades = await encoded(state, "trades.json", TradesResponse)
        analytics = await written(state, "analytics.json", AnalyticsResponse)
        markers = (totals.marker, trades.marker, analytics.marker if analytics else None)
        cache: StatisticsCache = state.statistics
        document, computed = await cache.get(
            markers,
            cast(AccountTotalsResponse, totals.document),
            cast(TradesResponse, trades.document),
            cast(AnalyticsResponse, analytics.document) if analytics else None,
        )
        return StatisticsResponse(
            **msgspec.structs.asdict(document), computedAt=computed, serverTime=server_time()
        )

    @get(
        "/analytics",
        summary="Breakdown tables for every trader",
        responses=documented(AnalyticsResponse),
    )
    async def analytics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "analytics.json", AnalyticsResponse)

    @get(
        "/analytics/{model_id:str}",
        summary="Breakdown tables for one trader",
        responses=documented(AnalyticsResponse),
    )
    async def model_analytics(
        self,
        request: Request[Any, Any, Any],
        model_id: Annotated[str, PathParameter(description="A trader id from the leaderboard")],
    ) -> Response[AnalyticsResponse] | Response[bytes]:
        if not MODEL_ID.fullmatch(model_id):
            raise ValidationException(
                detail="model id must use letters, digits, '.', '_' or '-' (at most 64)"
            )
        state = request.app.state
        everyone = cast(
            AnalyticsResponse,
            (await encoded(state, "analytics.json", AnalyticsResponse)).document,
        )
        if model_id not in {item.model_id for item in everyone.analytics}:
            raise NotFoundException(detail=f"no trader {model_id!r}")
        mine_only = await written(state, f"analytics-{model_id}.json", AnalyticsResponse)
        if mine_only is not None:
            return answer(request, mine_only.view)
        mine = [item for item in everyone.analytics if item.model_id == model_id]
        return Response(AnalyticsResponse(analytics=mine, serverTime=server_time()))

    @get(
        "/conversations",
        summary="Latest model invocations per trader",
        responses=documented(ConversationsResponse),
    )
    async def conversations(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await serve_view(request, "conversations.json", ConversationsResponse)

    @get(
        "/status",
        summary="What needs attention: paused traders and why, refusals, venue findings",
        responses=documented(StatusResponse),
    )
    async def status(
        self, request: Request[Any, Any, Any]
    ) -> Response[StatusResponse] | Response[bytes]:
        board: LeaseBoard | None = request.app.state.leases
        if board is None:
            return await serve_view(request, "status.json", StatusResponse)
        entry = await encoded(request.app.state, "status.json", StatusResponse)
        response = msgspec.structs.replace(
            cast(StatusResponse, entry.document), engine=board.owner, serverTime=server_time()
        )
        try:
            live = await asyncio.to_thread(board.live)  # a database round trip
        except Exception as exc:  # noqa: BLE001 - the views still answer; the error is named
            log.warning("could not read the leases: %r", exc)
            response.leasesError = f"the lease table could not be read: {type(exc).__name__}"
            return Response(response)
        response.leases = [
            LeaseHolder(lease.name, lease.owner, lease.token, round(lease.remaining, 1))
            for lease in live
        ]
        return Response(response)


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


#: The view routes without parameters: answered ahead of the framework (``ApiApp``).
PLAIN_VIEWS: dict[str, tuple[str, type[msgspec.Struct]]] = {
    "/api/crypto-prices": ("crypto-prices.json", CryptoPricesResponse),
    "/api/account-totals": ("account-totals.json", AccountTotalsResponse),
    "/api/trades": ("trades.json", TradesResponse),
    "/api/leaderboard": ("leaderboard.json", LeaderboardResponse),
    "/api/since-inception-values": ("since-inception-values.json", SinceInceptionResponse),
    "/api/analytics": ("analytics.json", AnalyticsResponse),
    "/api/conversations": ("conversations.json", ConversationsResponse),
    "/api/status": ("status.json", StatusResponse),  # only without leases (read live)
}


class ApiApp(Litestar):
    """Litestar with a short way for the hottest requests: a GET of a view route without
    a query, whose encoded view is ready, is answered here, without routing, parameter
    parsing, response building or middleware (most of a request's time once the body is
    kept encoded). Everything else, including every error, goes through the framework.
    The answers given here are counted in ``nof0_api_view_responses_total``."""

    fast_counter: Counter | None = None
    _counted: ClassVar[dict[tuple[str, int], Any]] = {}  # a child per route and status

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in {"GET", "HEAD"}
            and not scope["query_string"]
            and scope["path"] in PLAIN_VIEWS
            and await self._answer_view(scope, send)
        ):
            return
        await super().__call__(scope, receive, send)

    async def _answer_view(self, scope: Any, send: Any) -> bool:
        filename, kind = PLAIN_VIEWS[scope["path"]]
        if kind is StatusResponse and self.state.leases is not None:
            return False
        try:
            entry = await written(self.state, filename, kind)
        except Exception:  # noqa: BLE001 - not swallowed: the framework meets it again,
            return False  # and answers it (503, or the logged 500) as for any route
        if entry is None:
            return False
        if_none_match = accept_encoding = None
        for key, value in scope["headers"]:
            if key == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        status, headers, body = representation(
            entry.view, if_none_match, accept_encoding, server_time()
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # HEAD: the same headers (Content-Length included), no body.
        head = scope["method"] == "HEAD"
        await send(
            {"type": "http.response.body", "body": b"" if head else body, "more_body": False}
        )
        if self.fast_counter is not None:
            counted = self._counted.get((scope["path"], status))
            if counted is None:
                counted = self._counted[(scope["path"], status)] = self.fast_counter.labels(
                    scope["path"], str(status)
                )
            counted.inc()
        return True


def view_responses_counter() -> Counter:
    """The fast path's answers, per route and status (one family per process)."""
    global _VIEW_RESPONSES
    if _VIEW_RESPONSES is None:
        _VIEW_RESPONSES = Counter(
            "nof0_api_view_responses_total",
            "View requests answered from the encoded views, by route and status",
            ["path", "status_code"],
        )
    return _VIEW_RESPONSES


_VIEW_RESPONSES: Counter | None = None


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
        app.state.encoded = EncodedViews()
        app.state.statistics = StatisticsCache()
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
    app = ApiApp(
        route_handlers=handlers,
        lifespan=[views],
        middleware=middleware,
        openapi_config=OpenAPIConfig(title=title, version=version),
        exception_handlers={ValidationException: _client_error, 500: _internal_error},
        logging_config=None,  # the process configures logging, not the framework
        debug=debug,
    )
    if metrics:
        app.fast_counter = view_responses_counter()
    return app
