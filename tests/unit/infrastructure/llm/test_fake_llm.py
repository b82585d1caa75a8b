"""The fake LLM server itself: scripting, recording, and a clean stop."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time

import pytest

from tests.support.fake_llm import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    Delay,
    Drop,
    FakeLLMServer,
    Reply,
    Status,
)


def post(server: FakeLLMServer, path: str, body: object) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        data = json.dumps(body)
        headers = {"content-type": "application/json", "authorization": "Bearer k"}
        conn.request("POST", path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_script_then_default_and_the_record() -> None:
    with FakeLLMServer(Status(429), default=Reply("fallback", tokens_in=3, tokens_out=2)) as server:
        assert server.pending == 1
        status, error = post(server, OPENAI_PATH, {"model": "m1"})
        assert status == 429
        assert error == {
            "error": {"message": "scripted failure", "type": "fake_error", "code": "429"}
        }
        status, body = post(server, OPENAI_PATH, {"model": "m1"})
        assert status == 200
        assert body["object"] == "chat.completion"
        assert body["model"] == "m1"
        assert body["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fallback", "refusal": None},
                "finish_reason": "stop",
            }
        ]
        assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        status, message = post(server, ANTHROPIC_PATH, {"model": "c1"})
        assert status == 200
        assert message["type"] == "message"
        assert message["content"] == [{"type": "text", "text": "fallback"}]
        assert message["stop_reason"] == "end_turn"
        assert message["usage"] == {"input_tokens": 3, "output_tokens": 2}

        assert server.request_count == 3
        assert server.pending == 0
        first = server.requests[0]
        assert (first.method, first.path) == ("POST", OPENAI_PATH)
        assert first.headers["authorization"] == "Bearer k"
        assert first.body == {"model": "m1"}


def test_stop_is_prompt_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    server = FakeLLMServer(Delay(30.0), Drop()).start()
    waiting = threading.Thread(target=_post_ignoring_errors, args=(server,))
    waiting.start()
    silent = socket.create_connection(("127.0.0.1", server.port))  # never sends a request
    try:
        deadline = time.monotonic() + 5
        while server.request_count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.request_count == 1
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 3
    finally:
        silent.close()
        waiting.join(timeout=5)
    assert set(threading.enumerate()) == before
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url_openai


def _post_ignoring_errors(server: FakeLLMServer) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        post(server, OPENAI_PATH, {"model": "m"})
