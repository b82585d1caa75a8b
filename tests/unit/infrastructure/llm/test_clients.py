"""The LLM clients drive the real openai / anthropic SDKs against a wire-compatible fake."""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx2
import pytest

from application.ports import (
    AccountView,
    DecisionReply,
    DecisionRequest,
    MarketSnapshot,
    ModelError,
    ModelFailure,
    RenderedPrompt,
)
from infrastructure.llm.clients import (
    AnthropicModel,
    ModelEndpoint,
    OpenAICompatibleModel,
    build_model,
)
from tests.support.fake_llm import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    Behaviour,
    Delay,
    Drop,
    FakeLLMServer,
    Malformed,
    Reply,
    Status,
)

KEY = "sk-fake-Zq8vK2pXw9LmT4rB-nof0-test"
SYSTEM = "You are a disciplined crypto trader. Answer with JSON only."
USER = "It has been 42 minutes since you started trading. BTC mid 67000."
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "object", "required": ["signal"]},
}
DECISION = '{"BTC": {"signal": "hold", "justification": "no edge"}}'
FAST_RETRY = {"retry-after-ms": "1"}  # the SDKs treat retry-after: 0 as "use the backoff"
T0 = datetime(2025, 10, 17, tzinfo=UTC)

Protocol = Literal["openai", "anthropic"]
PROTOCOLS: tuple[Protocol, ...] = ("openai", "anthropic")


def make_request() -> DecisionRequest:
    prompt = RenderedPrompt(
        template="decision", version="v1", schema_version="v1", system=SYSTEM, user=USER, digest="d"
    )
    account = AccountView(
        equity=Decimal(10000),
        available_cash=Decimal(10000),
        return_pct=Decimal(0),
        sharpe_ratio=0.0,
        positions=(),
        minutes_elapsed=42,
        invocations=3,
    )
    return DecisionRequest(
        trader="t1",
        cycle_id="c1",
        as_of=T0,
        coins=("BTC",),
        snapshot=MarketSnapshot(as_of=T0, coins={}),
        account=account,
        prompt=prompt,
        model="gpt-5",
    )


def endpoint(server: FakeLLMServer | None, protocol: Protocol, **changes: Any) -> ModelEndpoint:
    base: dict[str, Any] = {
        "name": "gpt-5" if protocol == "openai" else "claude",
        "protocol": protocol,
        "model_name": "openai/gpt-5" if protocol == "openai" else "claude-test-1",
        "base_url": None
        if server is None
        else (server.url_openai if protocol == "openai" else server.url_anthropic),
        "api_key": KEY,
        "temperature": 0.3,
        "max_completion_tokens": 900,
        "timeout_s": 5.0,
        "max_retries": 0,
    }
    base.update(changes)
    return ModelEndpoint(**base)


async def _decide(ep: ModelEndpoint) -> DecisionReply:
    model = build_model(ep)
    try:
        return await model.decide(make_request())
    finally:
        await model.aclose()


def decide(ep: ModelEndpoint) -> DecisionReply:
    return asyncio.run(_decide(ep))


def fail(ep: ModelEndpoint) -> ModelError:
    with pytest.raises(ModelError) as info:
        decide(ep)
    err = info.value
    # The SDK exception is not chained: its message may quote a body echoing the headers,
    # and a logged traceback would print it.
    logged = "".join(traceback.format_exception(err))
    for text in (str(err), repr(err), err.detail, str(err.args), logged):
        assert KEY not in text
    assert err.__cause__ is None
    return err


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


def only_body(server: FakeLLMServer) -> dict[str, Any]:
    (seen,) = server.requests
    assert isinstance(seen.body, dict)
    return seen.body


# -- OpenAI-compatible: what is sent and what is read -----------------------------------


def test_openai_plain_answer(server: FakeLLMServer) -> None:
    server.push(Reply(DECISION, tokens_in=1234, tokens_out=56, model="openai/gpt-5-2025-08-07"))
    reply = decide(endpoint(server, "openai"))

    assert reply.text == DECISION
    assert reply.model == "openai/gpt-5-2025-08-07"
    assert (reply.tokens_in, reply.tokens_out) == (1234, 56)
    assert reply.latency_ms >= 0
    assert reply.cost_usd == Decimal(0)
    assert reply.cached is False

    (seen,) = server.requests
    assert seen.path == OPENAI_PATH
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    body = only_body(server)
    assert body["model"] == "openai/gpt-5"
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER},
    ]
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 900
    assert "max_tokens" not in body
    assert "response_format" not in body
    assert "stream" not in body or body["stream"] is False


def test_openai_legacy_max_tokens_name(server: FakeLLMServer) -> None:
    decide(endpoint(server, "openai", send_max_completion_tokens=False))
    body = only_body(server)
    assert body["max_tokens"] == 900
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("json_object", {"type": "json_object"}),
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": SCHEMA, "strict": False},
            },
        ),
    ],
)
def test_openai_structured_output_modes(
    server: FakeLLMServer, mode: str, expected: dict[str, Any]
) -> None:
    server.push(Reply(DECISION))
    reply = decide(endpoint(server, "openai", structured_output=mode, decision_schema=SCHEMA))
    assert reply.text == DECISION
    body = only_body(server)
    assert body["response_format"] == expected
    assert "tools" not in body


@pytest.mark.parametrize("field_name", ["reasoning_content", "reasoning"])
def test_openai_reasoning_is_wrapped_in_think(server: FakeLLMServer, field_name: str) -> None:
    server.push(Reply(DECISION, reasoning="BTC is ranging.", reasoning_field=field_name))
    reply = decide(endpoint(server, "openai"))
    assert reply.text == f"<think>BTC is ranging.</think>\n{DECISION}"


def test_openai_without_model_and_usage_falls_back(server: FakeLLMServer) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
    server.push(Malformed(json.dumps(body).encode()))
    reply = decide(endpoint(server, "openai"))
    assert (reply.text, reply.model) == ("hi", "openai/gpt-5")
    assert (reply.tokens_in, reply.tokens_out) == (0, 0)


# -- Anthropic: what is sent and what is read -------------------------------------------


def test_anthropic_plain_answer(server: FakeLLMServer) -> None:
    server.push(Reply(DECISION, tokens_in=800, tokens_out=90, model="claude-test-1-20251001"))
    reply = decide(endpoint(server, "anthropic"))

    assert reply.text == DECISION
    assert reply.model == "claude-test-1-20251001"
    assert (reply.tokens_in, reply.tokens_out) == (800, 90)
    assert reply.latency_ms >= 0

    (seen,) = server.requests
    assert seen.path == ANTHROPIC_PATH
    # anthropic>=2 sends the key as a bearer token (API version 2026-10-21), not x-api-key.
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in seen.headers
    assert seen.headers["anthropic-version"]
    body = only_body(server)
    assert body["model"] == "claude-test-1"
    assert body["system"] == SYSTEM
    assert body["messages"] == [{"role": "user", "content": USER}]
    assert body["max_tokens"] == 900
    # The SDK and the API version it sends reject sampling parameters: none is sent.
    assert "temperature" not in body
    assert "tools" not in body
    assert "tool_choice" not in body


def test_anthropic_thinking_is_wrapped_in_think(server: FakeLLMServer) -> None:
    server.push(Reply(DECISION, reasoning="Funding is flat."))
    reply = decide(endpoint(server, "anthropic"))
    assert reply.text == f"<think>Funding is flat.</think>\n{DECISION}"


def test_anthropic_tool_mode_returns_the_tool_input_as_json(server: FakeLLMServer) -> None:
    decision = {"BTC": {"signal": "buy_to_enter", "quantity": 0.01, "confidence": 0.7}}
    server.push(Reply(None, tool_input=decision, reasoning="Trend is up."))
    reply = decide(endpoint(server, "anthropic", structured_output="tool", decision_schema=SCHEMA))

    think, answer = reply.text.split("\n", 1)
    assert think == "<think>Trend is up.</think>"
    assert json.loads(answer) == decision
    body = only_body(server)
    assert body["tools"] == [
        {
            "name": "submit_decision",
            "description": "Submit the trading decision for every coin.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_decision"}


# -- retries and HTTP errors (both protocols) -------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_429_then_success_within_the_sdk_retries(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(Status(429, headers=FAST_RETRY), Reply(DECISION))
    reply = decide(endpoint(server, protocol, max_retries=2))
    assert reply.text == DECISION
    assert server.request_count == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_429_beyond_the_retries_is_rate_limited(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(*[Status(429, headers=FAST_RETRY, message="slow down")] * 2)
    err = fail(endpoint(server, protocol, max_retries=1))
    assert err.reason == ModelFailure.RATE_LIMITED
    assert "HTTP 429" in err.detail
    assert "slow down" in err.detail
    assert server.request_count == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_500_on_every_attempt_is_a_server_error(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(*[Status(500, headers=FAST_RETRY, message="upstream exploded")] * 3)
    err = fail(endpoint(server, protocol, max_retries=2))
    assert err.reason == ModelFailure.SERVER_ERROR
    assert "HTTP 500" in err.detail
    assert "upstream exploded" in err.detail
    assert server.request_count == 3
    assert err.latency_ms >= 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_529_overloaded_is_a_server_error(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(Status(529, message="Overloaded"))
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.SERVER_ERROR
    assert "HTTP 529" in err.detail
    assert "Overloaded" in err.detail


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (401, ModelFailure.AUTH_ERROR),
        (403, ModelFailure.AUTH_ERROR),
        (400, ModelFailure.BAD_REQUEST),
        (404, ModelFailure.BAD_REQUEST),
        (422, ModelFailure.BAD_REQUEST),
        (503, ModelFailure.SERVER_ERROR),
    ],
)
def test_status_codes_map_to_reasons(
    server: FakeLLMServer, protocol: Protocol, code: int, reason: ModelFailure
) -> None:
    server.push(Status(code, message=f"scripted {code}"))
    err = fail(endpoint(server, protocol))
    assert err.reason == reason
    assert f"HTTP {code}" in err.detail
    assert f"scripted {code}" in err.detail
    assert server.request_count == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_plain_text_error_body_is_quoted(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(Status(502, body=b"<html>Bad Gateway from nginx</html>"))
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.SERVER_ERROR
    assert "HTTP 502" in err.detail
    assert "Bad Gateway from nginx" in err.detail


# -- transport failures ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_delay_longer_than_the_timeout_is_a_timeout(
    server: FakeLLMServer, protocol: Protocol
) -> None:
    server.push(Delay(2.0, then=Reply(DECISION)))
    err = fail(endpoint(server, protocol, timeout_s=0.2))
    assert err.reason == ModelFailure.TIMEOUT
    assert "0.2s" in err.detail
    assert 150 <= err.latency_ms < 2000
    assert server.request_count == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_timeout_is_retried_by_the_sdk(server: FakeLLMServer, protocol: Protocol) -> None:
    server.push(Delay(2.0), Reply(DECISION))
    reply = decide(endpoint(server, protocol, timeout_s=0.2, max_retries=1))
    assert reply.text == DECISION
    assert server.request_count == 2
    assert reply.latency_ms >= 150  # measured around the call, retries included


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_dropped_connection_is_a_transport_error(
    server: FakeLLMServer, protocol: Protocol
) -> None:
    server.push(Drop())
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.TRANSPORT_ERROR
    assert "connection failed" in err.detail
    assert server.request_count == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_unreachable_port_is_a_transport_error(protocol: Protocol) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}" + ("/v1" if protocol == "openai" else "")
    err = fail(endpoint(None, protocol, base_url=url))
    assert err.reason == ModelFailure.TRANSPORT_ERROR
    assert "connection failed after 1 attempt(s)" in err.detail


# -- bodies that cannot be used ----------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "malformed",
    [
        Malformed(b"{not json at all"),
        Malformed(b"Service temporarily unavailable", content_type="text/plain"),
        Malformed(b"[1, 2, 3]"),
        Malformed(b'{"id": "x", "object": "chat.completion", "choices": []}'),
        Malformed(b'{"id": "x", "type": "message", "content": "just a string"}'),
        Malformed(b'{"choices": [{"message": "hi"}], "content": [1]}'),
    ],
    ids=["not-json", "text-plain", "json-array", "no-choices", "content-string", "wrong-types"],
)
def test_a_malformed_200_is_a_malformed_response(
    server: FakeLLMServer, protocol: Protocol, malformed: Malformed
) -> None:
    server.push(malformed)
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.MALFORMED_RESPONSE
    assert "HTTP 200" in err.detail


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "reply",
    [Reply(""), Reply(None), Reply("  \n "), Reply("", reasoning="I thought but said nothing")],
    ids=["empty", "null", "blank", "reasoning-only"],
)
def test_an_empty_answer_is_empty_output(
    server: FakeLLMServer, protocol: Protocol, reply: Reply
) -> None:
    server.push(reply)
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.EMPTY_OUTPUT


def test_anthropic_tool_mode_without_a_tool_call_or_text_is_empty(server: FakeLLMServer) -> None:
    server.push(Reply(None, finish_reason="max_tokens"))
    err = fail(endpoint(server, "anthropic", structured_output="tool", decision_schema=SCHEMA))
    assert err.reason == ModelFailure.EMPTY_OUTPUT
    assert "max_tokens" in err.detail


@pytest.mark.parametrize(
    ("protocol", "behaviour"),
    [
        ("openai", Reply(None, finish_reason="content_filter")),
        ("openai", Reply(DECISION, finish_reason="content_filter")),
        ("openai", Reply(None, refusal="I can't help with trading.")),
        ("anthropic", Reply("I won't do that.", finish_reason="refusal")),
    ],
    ids=["openai-content-filter", "openai-filtered-text", "openai-refusal", "anthropic-refusal"],
)
def test_refusals(server: FakeLLMServer, protocol: Protocol, behaviour: Behaviour) -> None:
    server.push(behaviour)
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.REFUSAL
    assert "refused" in err.detail


def test_openai_refusal_text_is_in_the_detail(server: FakeLLMServer) -> None:
    server.push(Reply(None, refusal="I can't help with trading."))
    err = fail(endpoint(server, "openai"))
    assert "I can't help with trading." in err.detail


# -- the API key never leaks -------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("code", [401, 400, 429, 500])
def test_the_key_is_redacted_when_the_server_echoes_the_headers(
    server: FakeLLMServer, protocol: Protocol, code: int
) -> None:
    server.push(Status(code, echo_headers=True, message="bad key"))
    err = fail(endpoint(server, protocol))
    assert f"HTTP {code}" in err.detail
    assert "[redacted]" in err.detail  # the key was there, and was taken out
    assert KEY in json.dumps(server.requests[0].headers)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_key_is_redacted_from_a_raw_error_body(
    server: FakeLLMServer, protocol: Protocol
) -> None:
    body = f"proxy rejected token {KEY} for this route".encode()
    server.push(Status(403, body=body))
    err = fail(endpoint(server, protocol))
    assert err.reason == ModelFailure.AUTH_ERROR
    assert "proxy rejected token [redacted] for this route" in err.detail


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_key_is_redacted_even_where_the_detail_is_cut(
    server: FakeLLMServer, protocol: Protocol
) -> None:
    # The key straddles the excerpt limit: cutting first would leave a prefix of it behind.
    body = ("x" * 180 + f" {KEY} " + "y" * 300).encode()
    server.push(Status(400, body=body))
    err = fail(endpoint(server, protocol))
    assert KEY[:8] not in err.detail
    assert len(err.detail) <= 200


def test_the_endpoint_repr_hides_the_key() -> None:
    ep = endpoint(None, "openai")
    assert KEY not in repr(ep)
    assert KEY not in str(ep)


# -- construction ------------------------------------------------------------------------


def test_build_model_picks_the_protocol() -> None:
    async def build() -> tuple[object, object]:
        openai_model = build_model(endpoint(None, "openai"))
        anthropic_model = build_model(endpoint(None, "anthropic"))
        await openai_model.aclose()
        await anthropic_model.aclose()
        return openai_model, anthropic_model

    openai_model, anthropic_model = asyncio.run(build())
    assert isinstance(openai_model, OpenAICompatibleModel)
    assert openai_model.name == "gpt-5"
    assert isinstance(anthropic_model, AnthropicModel)
    assert anthropic_model.name == "claude"


@pytest.mark.parametrize(
    ("protocol", "changes"),
    [
        ("openai", {"structured_output": "tool", "decision_schema": SCHEMA}),
        ("anthropic", {"structured_output": "json_object"}),
        ("anthropic", {"structured_output": "json_schema", "decision_schema": SCHEMA}),
        ("openai", {"structured_output": "json_schema"}),
        ("anthropic", {"structured_output": "tool"}),
        ("openai", {"timeout_s": 0}),
        ("openai", {"max_retries": -1}),
    ],
)
def test_impossible_endpoints_are_refused(protocol: Protocol, changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="model"):
        endpoint(None, protocol, **changes)


def test_a_model_refuses_the_other_protocol() -> None:
    with pytest.raises(ValueError, match="openai protocol"):
        OpenAICompatibleModel(endpoint(None, "anthropic"))
    with pytest.raises(ValueError, match="anthropic protocol"):
        AnthropicModel(endpoint(None, "openai"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_shared_http_client_is_used_and_left_open(
    server: FakeLLMServer, protocol: Protocol
) -> None:
    server.push(Reply(DECISION))

    async def go() -> tuple[str, bool]:
        async with httpx2.AsyncClient() as http:
            ep = endpoint(server, protocol)
            model: OpenAICompatibleModel | AnthropicModel
            if protocol == "openai":
                model = OpenAICompatibleModel(ep, http_client=http)
            else:
                model = AnthropicModel(ep, http_client=http)
            reply = await model.decide(make_request())
            await model.aclose()
            return reply.text, http.is_closed

    text, closed = asyncio.run(go())
    assert text == DECISION
    assert closed is False
