"""A provider that echoes the API key must not put it anywhere the arena writes or answers.

Issue 13's acceptance: a fake OpenAI-compatible endpoint repeats the key in a 401 body, in a
500 body and in an exception message (and, for good measure, in a 200 that is not JSON and
in an answer the model gives). After an arena has run against it, the key (raw, URL-encoded,
JSON-escaped, after ``Bearer``) is in no file of the data directory (event store, views), in
no ``/api/*`` answer, in no log record; and the failures keep their typed reasons.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx2
import pytest

from application.redaction import MARKER
from tests.e2e.test_llm_arena import llm_workspace, model, strategy
from tests.support.arena import ROUTES, OfflineArena, api_client
from tests.support.fake_llm import (
    Behaviour,
    FakeLLMServer,
    Malformed,
    RecordedRequest,
    Reply,
    Status,
)

#: Characters that URL-encoding changes, so the encoded form is a different string.
KEY = "sk-echo/9Zq+Ab7Yx=Wk4e"


def forms(secret: str) -> list[bytes]:
    texts = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return [t.encode() for t in texts] + [b"Bearer " + secret.encode()]


_seen: list[RecordedRequest] = []


def echoing(request: RecordedRequest) -> Behaviour:
    """Cycle through every way of echoing the key, then trade normally."""
    n = len(_seen)
    _seen.append(request)
    key = request.headers["authorization"].removeprefix("Bearer ")
    script: list[Behaviour] = [
        Status(401, body={"error": {"message": f"Incorrect API key provided: {key}"}}),
        Status(
            500,
            body=(
                f"upstream refused Authorization: Bearer {key} "
                f"(key={quote(key, safe='')}, {json.dumps({'api_key': key})})"
            ).encode(),
            headers={"content-type": "text/plain"},
        ),
        # The key right at the 80th byte of a body that is not JSON: a cut before the
        # redaction would leave half a key behind.
        Malformed(("x" * 70 + key + " not json").encode()),
        Reply(text=f"I was called with {key}; no decision"),
    ]
    return script[n] if n < len(script) else strategy(request)


def test_a_key_echoed_by_the_provider_is_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seen.clear()
    caplog.set_level(logging.DEBUG)
    # An exception whose message quotes the key (a proxy's refusal surfaced by the HTTP
    # library, not as a body): every request to the fallback endpoint on port 9 raises it.
    original = httpx2.AsyncHTTPTransport.handle_async_request

    async def quoting(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        if request.url.port == 9:
            raise httpx2.ConnectError(f"proxy refused token {KEY} for {request.url}")
        return await original(self, request)

    monkeypatch.setattr(httpx2.AsyncHTTPTransport, "handle_async_request", quoting)
    with FakeLLMServer(responder=echoing) as server:
        ws = llm_workspace(tmp_path, {"fake-gpt": model(server.url_openai, 1)}, "fake-gpt", [])
        ws.set("llm.yaml", ("api_key",), KEY)
        dead = {"fake-dead": model("http://127.0.0.1:9/v1", 2)}  # nothing listens on port 9
        ws.set("llm.yaml", ("models",), {"fake-gpt": model(server.url_openai, 1), **dead})
        ws.set("manager.yaml", ("traders", 1, "fallback_models"), ["fake-dead"])
        arena = OfflineArena.open(tmp_path / "data", config_path=ws.main)
        arena.run_sync(minutes=40)
    assert len(_seen) >= 6, "the fake answered every way of echoing, then traded"
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in _seen)

    events = list(arena.engine.app.trader_events("random-walk"))
    failures = [e for e in events if type(e).__name__ in ("ModelAttemptFailed", "LLMFailed")]
    reasons = {e.reason for e in failures}
    # The typed reasons are what they would be with a well-behaved provider.
    assert {"auth_error", "server_error", "malformed_response", "transport_error"} <= reasons
    details = " ".join(e.detail for e in failures if hasattr(e, "detail"))
    assert MARKER in details, "the echoed key was replaced by the marker, not dropped silently"
    assert "Incorrect API key provided" in details  # the provider's words survive

    leaks: list[str] = []
    for path in sorted((tmp_path / "data").rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            leaks += [f"{path.name}: {f!r}" for f in forms(KEY) if f in content]

    with api_client(arena.config) as client:
        routes = [*ROUTES, "/api/status", "/api/analytics/random-walk", "/healthz"]
        answers = {route: client.get(route) for route in routes}
    for route, answer in answers.items():
        assert answer.status_code == 200, route
        leaks += [f"{route}: {f!r}" for f in forms(KEY) if f in answer.content]
    conversations = answers["/api/conversations"].json()["conversations"]
    assert any(MARKER in json.dumps(c) for c in conversations), conversations[-3:]

    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "fake-gpt" in logged, "the failures were logged"
    leaks += [f"log: {f!r}" for f in forms(KEY) if f.decode() in logged]
    assert not leaks, leaks
