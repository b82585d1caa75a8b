"""The arena dashboard: one HTML page at ``/`` and its assets under ``/assets``.

Everything is package data (``interfaces/http/static``): plain JavaScript and CSS with
hand-written SVG charts, no Node.js, no CDN, no third-party front-end code. The page reads
only the ``/api/*`` routes, polling them with ``If-None-Match``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC = Path(str(files("interfaces.http") / "static"))
ASSETS_PATH = "/assets"


@get("/", include_in_schema=False, media_type="text/html")
async def index() -> Response[bytes]:
    """The page itself; read per request so an edited asset shows after a reload."""
    return Response(
        (STATIC / "index.html").read_bytes(),
        media_type="text/html",
        headers={"cache-control": "no-cache"},
    )


assets = create_static_files_router(
    path=ASSETS_PATH,
    directories=[STATIC],
    name="dashboard-assets",
    cache_control=CacheControlHeader(no_cache=True),
    include_in_schema=False,
)

#: Added to the app's route handlers: ``/`` and ``/assets/*``.
dashboard = Router(path="/", route_handlers=[index, assets], tags=["dashboard"])
