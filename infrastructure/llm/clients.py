"""LLM clients: the :class:`application.ports.DecisionModel` port over the official SDKs.

* :class:`OpenAICompatibleModel` — ``openai.AsyncOpenAI`` and Chat Completions (OpenAI,
  DeepSeek, OpenRouter, Qwen, any OpenAI-compatible gateway).
* :class:`AnthropicModel` — ``anthropic.AsyncAnthropic`` and the Messages API.

The SDKs own the wire: authentication, timeouts and retries with backoff on 429, 5xx and
timeouts. The clients read the raw body themselves (``with_raw_response``) so that a 200 the
SDK would accept untyped (not JSON, no choices) is reported as ``MALFORMED_RESPONSE`` rather
than failing later. Every failure becomes a :class:`ModelError` with a
:class:`ModelFailure` reason and a detail that never carries the API key; the SDK exception is
not chained (its message may quote a body that echoes the request's headers).

Reasoning returned apart from the answer (``reasoning_content`` / ``reasoning`` fields,
Anthropic ``thinking`` blocks) is put first in the reply, inside ``<think>...</think>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx2

from application.ports import DecisionReply, DecisionRequest, ModelError, ModelFailure
from application.redaction import SECRETS, redact

if TYPE_CHECKING:
    # The vendors' SDKs take seconds to import (thousands of generated types); they are
    # imported when a model of theirs is built, so that `nof0 serve` workers, the CLI and
    # baseline-only arenas start without them.
    import anthropic
    import openai
    from anthropic.types import ToolChoiceToolParam, ToolParam
    from openai.types.chat.completion_create_params import ResponseFormat

TOOL_NAME = "submit_decision"
SCHEMA_NAME = "decision"
EXCERPT_CHARS = 200

StructuredOutput = Literal["none", "json_object", "json_schema", "tool"]
_OPENAI_MODES: frozenset[str] = frozenset({"none", "json_object", "json_schema"})
_ANTHROPIC_MODES: frozenset[str] = frozenset({"none", "tool"})


@dataclass(frozen=True)
class ModelEndpoint:
    """One configured model (an ``llm.yaml`` entry, resolved)."""

    name: str  # the llm.yaml key, e.g. "gpt-5"
    protocol: Literal["openai", "anthropic"]
    model_name: str  # sent to the API, e.g. "openai/gpt-5"
    base_url: str | None  # None: the SDK default
    api_key: str = field(repr=False)  # never logged, never put into an error message
    temperature: float
    max_completion_tokens: int
    structured_output: StructuredOutput = "none"
    timeout_s: float = 60.0  # per call
    max_retries: int = 2  # SDK retries with backoff on 429, 5xx and timeouts
    decision_schema: Mapping[str, Any] | None = None  # for json_schema / tool modes
    send_max_completion_tokens: bool = True  # OpenAI's new name; False sends max_tokens

    def __post_init__(self) -> None:
        modes = _OPENAI_MODES if self.protocol == "openai" else _ANTHROPIC_MODES
        if self.structured_output not in modes:
            raise ValueError(
                f"model {self.name!r}: structured_output {self.structured_output!r} is not "
                f"available over the {self.protocol} protocol (one of {sorted(modes)})"
            )
        if self.structured_output in ("json_schema", "tool") and self.decision_schema is None:
            raise ValueError(
                f"model {self.name!r}: structured_output {self.structured_output!r} "
                "needs a decision_schema"
            )
        if self.timeout_s <= 0 or self.max_retries < 0 or self.max_completion_tokens <= 0:
            raise ValueError(
                f"model {self.name!r}: timeout_s and max_completion_tokens must be positive "
                "and max_retries not negative"
            )


# -- shared helpers -----------------------------------------------------------------------


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_message(body: object, fallback: str) -> str:
    """The provider's own error message: ``{"error": {"message": ...}}`` or the raw body."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
        return json.dumps(body, default=str)
    if isinstance(body, str | bytes) and body:
        return body.decode(errors="replace") if isinstance(body, bytes) else body
    return fallback


def _status_reason(code: int) -> ModelFailure:
    if code == 429:
        return ModelFailure.RATE_LIMITED
    if code >= 500:
        return ModelFailure.SERVER_ERROR
    if code in (401, 403):
        return ModelFailure.AUTH_ERROR
    return ModelFailure.BAD_REQUEST


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _compose(answer: str, reasoning: str) -> str:
    return f"<think>{reasoning}</think>\n{answer}" if reasoning.strip() else answer


class _Client:
    """What both adapters share: the SDK client, failure mapping, body decoding, the reply."""

    protocol: ClassVar[str]
    _client: Any

    @staticmethod
    def _sdk() -> ModuleType:
        """The vendor's SDK module (imported on first use)."""
        raise NotImplementedError

    def __init__(
        self, endpoint: ModelEndpoint, *, http_client: httpx2.AsyncClient | None = None
    ) -> None:
        if endpoint.protocol != self.protocol:
            raise ValueError(f"model {endpoint.name!r} does not speak the {self.protocol} protocol")
        self.endpoint = endpoint
        self.name = endpoint.name
        SECRETS.register(endpoint.api_key)  # also when built without a configuration file
        self._owns_http = http_client is None
        self._client = self._client_class()(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,
            timeout=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
            http_client=http_client,
        )

    def _client_class(self) -> Callable[..., Any]:
        sdk = self._sdk()
        client: Callable[..., Any] = (
            sdk.AsyncAnthropic if self.protocol == "anthropic" else sdk.AsyncOpenAI
        )
        return client

    async def aclose(self) -> None:
        if self._owns_http:
            await self._client.close()

    def _fail(self, reason: ModelFailure, detail: str, started: float) -> ModelError:
        # Redact before shortening: a cut could leave a prefix of the key that no longer matches.
        text = _short(redact(f"{self.endpoint.name}: {detail}"))
        return ModelError(reason, text, _elapsed_ms(started))

    def _from_sdk(self, exc: openai.APIError | anthropic.APIError, started: float) -> ModelError:
        sdk = self._sdk()  # the exception classes are named alike in both SDKs
        attempts = self.endpoint.max_retries + 1
        if isinstance(exc, sdk.APITimeoutError):
            return self._fail(
                ModelFailure.TIMEOUT,
                f"no answer within {self.endpoint.timeout_s:g}s ({attempts} attempt(s))",
                started,
            )
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__
            why = f"{type(cause).__name__}: {cause}" if cause is not None else exc.message
            return self._fail(
                ModelFailure.TRANSPORT_ERROR,
                f"connection failed after {attempts} attempt(s): {why}",
                started,
            )
        if isinstance(exc, sdk.APIResponseValidationError):
            return self._fail(
                ModelFailure.MALFORMED_RESPONSE,
                f"HTTP {exc.status_code}, unreadable body: {exc.message}",
                started,
            )
        if isinstance(exc, sdk.APIStatusError):
            message = _error_message(exc.body, exc.message)
            return self._fail(
                _status_reason(exc.status_code), f"HTTP {exc.status_code}: {message}", started
            )
        return self._fail(ModelFailure.TRANSPORT_ERROR, f"{type(exc).__name__}", started)

    def _decode(self, raw: bytes, started: float) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            # Redacted whole before the cut, which could split a key into an unmatched part.
            excerpt = _cut(redact(raw.decode(errors="replace")), 80)
            raise self._fail(
                ModelFailure.MALFORMED_RESPONSE, f"HTTP 200 body is not JSON: {excerpt!r}", started
            ) from None
        if not isinstance(body, dict):
            raise self._fail(
                ModelFailure.MALFORMED_RESPONSE,
                f"HTTP 200 body is a JSON {type(body).__name__}, not an object",
                started,
            )
        return body

    def _reply(
        self,
        body: Mapping[str, Any],
        *,
        answer: str,
        reasoning: str,
        usage_keys: tuple[str, str],
        started: float,
    ) -> DecisionReply:
        usage = body.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        model = body.get("model")
        return DecisionReply(
            # The answer is provider text too: a proxy or a model may echo the request.
            text=redact(_compose(answer, reasoning)),
            model=model if isinstance(model, str) and model else self.endpoint.model_name,
            tokens_in=_int(usage.get(usage_keys[0])),
            tokens_out=_int(usage.get(usage_keys[1])),
            latency_ms=_elapsed_ms(started),
        )


# -- OpenAI-compatible --------------------------------------------------------------------


def _openai_text(content: object) -> str | None:
    """``message.content``: a string, null, or (some gateways) a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "".join(p for p in parts if isinstance(p, str))
    return None


class OpenAICompatibleModel(_Client):
    """Chat Completions through ``openai.AsyncOpenAI``."""

    protocol = "openai"
    _client: openai.AsyncOpenAI

    @staticmethod
    def _sdk() -> ModuleType:
        import openai

        return openai

    def _response_format(self) -> ResponseFormat | None:
        mode = self.endpoint.structured_output
        if mode == "json_object":
            return {"type": "json_object"}
        if mode == "json_schema":
            schema = dict(self.endpoint.decision_schema or {})
            return {
                "type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": False},
            }
        return None

    async def decide(self, request: DecisionRequest) -> DecisionReply:
        ep = self.endpoint
        limit = ep.max_completion_tokens
        response_format = self._response_format()
        openai = self._sdk()
        started = time.perf_counter()
        try:
            raw = await self._client.chat.completions.with_raw_response.create(
                model=ep.model_name,
                messages=[
                    {"role": "system", "content": request.prompt.system},
                    {"role": "user", "content": request.prompt.user},
                ],
                temperature=ep.temperature,
                max_completion_tokens=limit if ep.send_max_completion_tokens else openai.omit,
                max_tokens=openai.omit if ep.send_max_completion_tokens else limit,
                response_format=response_format if response_format is not None else openai.omit,
            )
        except openai.APIError as exc:
            raise self._from_sdk(exc, started) from None
        body = self._decode(raw.http_response.content, started)

        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, Mapping) else None
        if not isinstance(choice, Mapping) or not isinstance(message, Mapping):
            raise self._fail(
                ModelFailure.MALFORMED_RESPONSE,
                f"HTTP 200 without choices[0].message (keys: {sorted(body)[:8]})",
                started,
            )
        finish = choice.get("finish_reason")
        refusal = message.get("refusal")
        if finish == "content_filter" or (isinstance(refusal, str) and refusal.strip()):
            said = refusal if isinstance(refusal, str) and refusal.strip() else "no text"
            raise self._fail(
                ModelFailure.REFUSAL, f"refused (finish_reason={finish}): {said}", started
            )
        answer = _openai_text(message.get("content"))
        if answer is None:
            kind = type(message.get("content")).__name__
            raise self._fail(
                ModelFailure.MALFORMED_RESPONSE, f"message.content is a {kind}", started
            )
        if not answer.strip():
            raise self._fail(
                ModelFailure.EMPTY_OUTPUT, f"empty answer (finish_reason={finish})", started
            )
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        return self._reply(
            body,
            answer=answer,
            reasoning=reasoning if isinstance(reasoning, str) else "",
            usage_keys=("prompt_tokens", "completion_tokens"),
            started=started,
        )


# -- Anthropic ----------------------------------------------------------------------------


class AnthropicModel(_Client):
    """The Messages API through ``anthropic.AsyncAnthropic``.

    ``endpoint.temperature`` is not sent: anthropic>=1.0 dropped the sampling parameters and
    API version 2026-10-21 (the SDK's default) answers 400 to them, even at their defaults.
    The SDK sends the key as ``Authorization: Bearer``."""

    protocol = "anthropic"
    _client: anthropic.AsyncAnthropic

    @staticmethod
    def _sdk() -> ModuleType:
        import anthropic

        return anthropic

    async def decide(self, request: DecisionRequest) -> DecisionReply:
        ep = self.endpoint
        tool_mode = ep.structured_output == "tool"
        anthropic = self._sdk()
        tools: list[ToolParam] = []
        choice: ToolChoiceToolParam = {"type": "tool", "name": TOOL_NAME}
        if tool_mode:
            tools.append(
                {
                    "name": TOOL_NAME,
                    "description": "Submit the trading decision for every coin.",
                    "input_schema": dict(ep.decision_schema or {}),
                }
            )
        started = time.perf_counter()
        try:
            raw = await self._client.messages.with_raw_response.create(
                model=ep.model_name,
                system=request.prompt.system,
                messages=[{"role": "user", "content": request.prompt.user}],
                max_tokens=ep.max_completion_tokens,
                tools=tools if tool_mode else anthropic.omit,
                tool_choice=choice if tool_mode else anthropic.omit,
            )
        except anthropic.APIError as exc:
            raise self._from_sdk(exc, started) from None
        body = self._decode(raw.http_response.content, started)

        blocks = body.get("content")
        if not isinstance(blocks, list) or not all(isinstance(b, Mapping) for b in blocks):
            raise self._fail(
                ModelFailure.MALFORMED_RESPONSE,
                f"HTTP 200 without a content list (keys: {sorted(body)[:8]})",
                started,
            )
        stop = body.get("stop_reason")
        if stop == "refusal":
            raise self._fail(ModelFailure.REFUSAL, "refused (stop_reason=refusal)", started)
        texts = [
            b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        thoughts = [
            b["thinking"]
            for b in blocks
            if b.get("type") == "thinking" and isinstance(b.get("thinking"), str)
        ]
        tool_inputs = [
            b["input"]
            for b in blocks
            if b.get("type") == "tool_use" and isinstance(b.get("input"), Mapping)
        ]
        answer = "".join(texts)
        if tool_mode and tool_inputs:
            answer = json.dumps(tool_inputs[0])
        if not answer.strip():
            raise self._fail(
                ModelFailure.EMPTY_OUTPUT, f"empty answer (stop_reason={stop})", started
            )
        return self._reply(
            body,
            answer=answer,
            reasoning="\n".join(thoughts),
            usage_keys=("input_tokens", "output_tokens"),
            started=started,
        )


def build_model(endpoint: ModelEndpoint) -> OpenAICompatibleModel | AnthropicModel:
    if endpoint.protocol == "anthropic":
        return AnthropicModel(endpoint)
    return OpenAICompatibleModel(endpoint)
