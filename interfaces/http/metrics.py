"""``/metrics``: the API's own request metrics and the engine's families, in one scrape."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from litestar import Response, get
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

#: Set (by ``nof0 serve`` with several workers) to the directory the workers' metrics are
#: kept in: a scrape reaches one worker and must report them all.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def api_registry() -> CollectorRegistry:
    """This process's request metrics, or every worker's in multiprocess mode."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def metrics_route(engine: CollectorRegistry | None) -> Any:
    """The handler; ``engine`` is the engine's registry (None: the API's metrics only)."""
    api = api_registry()
    registries: Sequence[CollectorRegistry] = (api,) if engine is None else (api, engine)

    @get("/metrics", summary="Prometheus metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response[bytes]:
        body = b"".join(generate_latest(registry) for registry in registries)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
