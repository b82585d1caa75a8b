"""Conditional GET for the view routes: an ``ETag`` per document, ``304`` when unchanged.

A pollster (the dashboard) sends ``If-None-Match`` with the tag it has; while the view has
not moved it gets an empty ``304`` instead of the document again. The tag is a digest of
the body without ``serverTime`` (which changes on every response and would make every tag
new): msgspec writes keys unescaped and a string's quotes escaped, so ``"serverTime":N``
in the encoded body can only be that key.
"""

from __future__ import annotations

import hashlib
import re

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

SERVER_TIME = re.compile(rb'"serverTime":-?\d+')


def entity_tag(body: bytes) -> str:
    """A strong tag for ``body``, the same for two bodies that differ only in serverTime."""
    digest = hashlib.blake2b(SERVER_TIME.sub(b"", body), digest_size=12).hexdigest()
    return f'"{digest}"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag, weak or strong, equal to ``tag``."""
    wanted = {item.strip().removeprefix("W/") for item in if_none_match.split(",")}
    return "*" in wanted or tag in wanted


def conditional_get(app: ASGIApp) -> ASGIApp:
    """Middleware: buffer a 200 answer to GET, tag it, and answer 304 when the tag matches
    (HEAD passes untouched: its empty body has no tag worth giving). An answer that comes
    tagged already (an encoded view, which did all this itself) passes untouched too."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "GET":
            await app(scope, receive, send)
            return
        sent = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        start: HTTPResponseStartEvent | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200 or _tagged(message):
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await _finish(start, b"".join(chunks), sent.get("if-none-match"), send)

        await app(scope, receive, buffered)

    return middleware


def _tagged(start: HTTPResponseStartEvent) -> bool:
    return any(key.lower() == b"etag" for key, _ in start.get("headers", []))


async def _finish(
    start: HTTPResponseStartEvent, body: bytes, if_none_match: str | None, send: Send
) -> None:
    tag = entity_tag(body)
    headers = [
        (key, value)
        for key, value in start.get("headers", [])
        if key.lower() not in {b"etag", b"cache-control"}
    ]
    headers += [(b"etag", tag.encode()), (b"cache-control", b"no-cache")]
    if if_none_match is not None and matches(if_none_match, tag):
        headers = [(key, value) for key, value in headers if key.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
