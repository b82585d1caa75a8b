"""``/metrics``: the API's own request metrics and the engine's families, in one scrape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Response, get
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def metrics_route(engine: CollectorRegistry | None) -> Any:
    """The handler; ``engine`` is the engine's registry (None: the API's metrics only)."""
    registries: Sequence[CollectorRegistry] = (REGISTRY,) if engine is None else (REGISTRY, engine)

    @get("/metrics", summary="Prometheus metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response[bytes]:
        body = b"".join(generate_latest(registry) for registry in registries)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
