"""A wire-compatible fake LLM vendor: OpenAI Chat Completions and Anthropic Messages on 127.0.0.1.

The real SDKs talk to it over HTTP, so retries, timeouts, headers and error parsing are the
SDKs' own. Behaviours are scripted in a queue (one per request); when the queue is empty the
``default`` behaviour answers. Every request is recorded (path, headers, parsed JSON body).

    with FakeLLMServer(Status(429, headers={"retry-after-ms": "1"}), Reply("hi")) as server:
        ...  # point the SDK at server.url_openai or server.url_anthropic
        assert server.request_count == 2
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


@dataclass(frozen=True)
class Reply:
    """A 200 answer in the wire format of the path that was called.

    ``finish_reason`` is OpenAI's ``finish_reason`` or Anthropic's ``stop_reason`` (default:
    ``stop`` / ``end_turn``, or ``tool_use`` when ``tool_input`` is set). ``model`` defaults to
    the model named in the request. ``tokens_in=None`` leaves ``usage`` out of the body."""

    text: str | None = "ok"
    tokens_in: int | None = 11
    tokens_out: int = 7
    reasoning: str | None = None
    tool_input: Mapping[str, Any] | None = None
    finish_reason: str | None = None
    model: str | None = None
    refusal: str | None = None  # OpenAI's ``message.refusal``
    reasoning_field: str = "reasoning_content"  # DeepSeek's name; OpenRouter uses "reasoning"


@dataclass(frozen=True)
class Status:
    """An HTTP error. ``body=None`` sends the vendor's error envelope; ``echo_headers`` puts
    the request's headers (the API key included) into the error message, as careless
    proxies do."""

    code: int
    body: Mapping[str, Any] | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = "scripted failure"
    echo_headers: bool = False


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (cut short when the server stops), then behave as ``then``."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is ``raw`` (not the vendor's format)."""

    raw: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


Behaviour = Reply | Status | Delay | Malformed | Drop


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # the parsed JSON body, or None when it was not JSON
    raw: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, owner: FakeLLMServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose here (timeouts, drops): nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a silent client cannot hold a handler thread for ever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        recorded = RecordedRequest("POST", self.path, headers, body, raw)
        behaviour = self.server.owner._next(recorded)
        self.close_connection = True
        # The client may have given up (a timeout in the test): nothing to answer then.
        with contextlib.suppress(ConnectionError, TimeoutError):
            self._perform(behaviour, recorded)

    def _perform(self, behaviour: Behaviour, request: RecordedRequest) -> None:
        if isinstance(behaviour, Delay):
            if self.server.owner._stopping.wait(behaviour.seconds):
                return
            self._perform(behaviour.then or self.server.owner.default, request)
        elif isinstance(behaviour, Drop):
            return
        elif isinstance(behaviour, Malformed):
            self._send(200, behaviour.raw, {"content-type": behaviour.content_type})
        elif isinstance(behaviour, Status):
            self._send(behaviour.code, _error_body(behaviour, request), dict(behaviour.headers))
        elif request.path == OPENAI_PATH:
            self._send(200, _json(_openai_reply(behaviour, request)), {})
        elif request.path == ANTHROPIC_PATH:
            self._send(200, _json(_anthropic_reply(behaviour, request)), {})
        else:
            self._send(404, _json({"error": {"message": f"no route {request.path}"}}), {})

    def _send(self, code: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(code)
        names = {name.lower() for name in headers}
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _request_model(request: RecordedRequest) -> str:
    if isinstance(request.body, dict) and isinstance(request.body.get("model"), str):
        return str(request.body["model"])
    return "unknown"


def _openai_reply(reply: Reply, request: RecordedRequest) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": reply.refusal}
    if reply.reasoning is not None:
        message[reply.reasoning_field] = reply.reasoning
    if reply.tool_input is not None:
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "submit_decision", "arguments": json.dumps(reply.tool_input)},
            }
        ]
    finish = reply.finish_reason or ("tool_calls" if reply.tool_input is not None else "stop")
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or _request_model(request),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if reply.tokens_in is not None:
        body["usage"] = {
            "prompt_tokens": reply.tokens_in,
            "completion_tokens": reply.tokens_out,
            "total_tokens": reply.tokens_in + reply.tokens_out,
        }
    return body


def _anthropic_reply(reply: Reply, request: RecordedRequest) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        content.append({"type": "thinking", "thinking": reply.reasoning, "signature": "sig"})
    if reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    if reply.tool_input is not None:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "submit_decision",
                "input": dict(reply.tool_input),
            }
        )
    stop = reply.finish_reason or ("tool_use" if reply.tool_input is not None else "end_turn")
    body: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": reply.model or _request_model(request),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
    }
    if reply.tokens_in is not None:
        body["usage"] = {"input_tokens": reply.tokens_in, "output_tokens": reply.tokens_out}
    return body


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _error_body(status: Status, request: RecordedRequest) -> bytes:
    if isinstance(status.body, bytes):
        return status.body
    if status.body is not None:
        return _json(dict(status.body))
    message = status.message
    if status.echo_headers:  # credentials first, so that a short excerpt still shows them
        first = ("authorization", "x-api-key")
        echoed = {k: v for k, v in request.headers.items() if k in first}
        echoed.update((k, v) for k, v in request.headers.items() if k not in first)
        message = f"{message}; request headers were {json.dumps(echoed)}"
    if request.path == ANTHROPIC_PATH:
        kind = _ANTHROPIC_ERROR_TYPES.get(status.code, "api_error")
        return _json({"type": "error", "error": {"type": kind, "message": message}})
    return _json({"error": {"message": message, "type": "fake_error", "code": str(status.code)}})


class FakeLLMServer:
    """Serves both vendors' APIs on one ephemeral 127.0.0.1 port; a context manager."""

    def __init__(
        self,
        *script: Behaviour,
        default: Behaviour | None = None,
        responder: Callable[[RecordedRequest], Behaviour] | None = None,
    ) -> None:
        self.default: Behaviour = default if default is not None else Reply()
        #: When the script is empty, answer from the request (e.g. read the prompt).
        self.responder = responder
        self._queue: deque[Behaviour] = deque(script)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        if self._server is not None:
            raise RuntimeError("the fake server is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # cuts Delay behaviours short
        server.shutdown()
        thread.join()
        with server.sockets_lock:
            pending = list(server.open_sockets)
        for sock in pending:  # unblock handlers still reading from a silent client
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- script and record ----------------------------------------------------------------

    def push(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            self._requests.append(request)
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return self.default

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._queue)

    # -- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        return int(self._server.server_address[1])

    @property
    def url_openai(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url_anthropic(self) -> str:
        return f"http://127.0.0.1:{self.port}"
