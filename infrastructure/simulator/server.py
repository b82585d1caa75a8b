"""The simulator's HTTP front: ``POST /info`` and ``POST /exchange`` on 127.0.0.1, as the SDK
expects them (JSON in and out, HTTP/1.1 keep-alive), over a :class:`SimGateway`.

Built on the standard library's ``ThreadingHTTPServer`` (a thread per connection): every venue
call is serialised by the gateway's lock anyway. Signature recovery runs on libsecp256k1
(coincurve, which eth_keys picks up): about 1 ms a signed request instead of the pure-Python
curve's 8–10 ms, which leaves the HTTP layer and the action hash as the main costs.
Full control over the socket is what the fault hooks need (answer nothing, close the
connection, send a body that is not JSON).

Bodies: a 4xx/5xx whose gateway body is a ``str`` goes out as ``text/plain`` (Hyperliquid's
422 text); everything else is JSON, including ``null``.

``interceptor(path, body) -> Fault | None`` is a test hook, set in code only: it sees each
parsed request before the gateway does and may replace the normal answer by a
:class:`Fault`.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from infrastructure.simulator.errors import DESERIALIZE
from infrastructure.simulator.gateway import SimGateway

log = logging.getLogger("nof0.sim")

PATHS = frozenset({"/info", "/exchange"})
MAX_BODY = 1 << 20  # far above any real request; a bigger one is refused unread
IDLE_TIMEOUT_S = 120.0  # an idle keep-alive connection is closed after this
MALFORMED_TEXT = "<html><body><h1>502 Bad Gateway</h1></body></html>"


class FaultKind(enum.Enum):
    FAIL_BEFORE = "fail_before"  # answer ``status`` (5xx), the request is not processed
    FAIL_AFTER = "fail_after"  # process, then answer ``status`` instead of the result
    DELAY_BEFORE = "delay_before"  # wait ``delay_s``, then process and answer normally
    DELAY_AFTER = "delay_after"  # process, then wait ``delay_s`` before answering
    DROP_BEFORE = "drop_before"  # close the connection unanswered, not processed
    DROP_AFTER = "drop_after"  # process, then close the connection unanswered
    RATE_LIMIT = "rate_limit"  # HTTP 429, body null, not processed
    MALFORMED = "malformed"  # HTTP 200 with ``text`` (not JSON); processed if ``process``
    CANNED = "canned"  # HTTP 200 with the JSON ``body``, not processed


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering normally (see :class:`FaultKind`)."""

    kind: FaultKind
    status: int = 500
    delay_s: float = 0.0
    body: Any = None
    text: str = MALFORMED_TEXT
    process: bool = True

    @classmethod
    def fail_before(cls, status: int = 500) -> Fault:
        return cls(FaultKind.FAIL_BEFORE, status=status)

    @classmethod
    def fail_after(cls, status: int = 500) -> Fault:
        return cls(FaultKind.FAIL_AFTER, status=status)

    @classmethod
    def delay_before(cls, seconds: float) -> Fault:
        return cls(FaultKind.DELAY_BEFORE, delay_s=seconds)

    @classmethod
    def delay_after(cls, seconds: float) -> Fault:
        return cls(FaultKind.DELAY_AFTER, delay_s=seconds)

    @classmethod
    def drop_before(cls) -> Fault:
        return cls(FaultKind.DROP_BEFORE)

    @classmethod
    def drop_after(cls) -> Fault:
        return cls(FaultKind.DROP_AFTER)

    @classmethod
    def rate_limit(cls) -> Fault:
        return cls(FaultKind.RATE_LIMIT, status=429)

    @classmethod
    def malformed(cls, text: str = MALFORMED_TEXT, *, process: bool = True) -> Fault:
        return cls(FaultKind.MALFORMED, status=200, text=text, process=process)

    @classmethod
    def canned(cls, body: Any) -> Fault:
        return cls(FaultKind.CANNED, status=200, body=body)


Interceptor = Callable[[str, Any], Fault | None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: Hyperliquid's parser refuses them


def parse_json(raw: bytes) -> Any:
    """The request body, or raises ``ValueError`` (not UTF-8, not strict JSON)."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


def encode(status: int, body: Any) -> tuple[bytes, str]:
    """(payload, content type) of a gateway answer."""
    if isinstance(body, str) and status >= 400:
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body, separators=(",", ":")).encode(), "application/json"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every connection thread
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: SimServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.accepted = 0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
            self.accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every connection thread blocked reading an idle keep-alive socket."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up mid-answer (timeouts, dropped faults) are expected here.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK posts through a requests.Session
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def version_string(self) -> str:
        return "nof0-sim"

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in PATHS:
            self._not_found()
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(413 if length > MAX_BODY else 400, "Bad request body length")
            return
        raw = self.rfile.read(length) if length else b""
        try:
            body = parse_json(raw)
        except ValueError:
            self._send(422, DESERIALIZE)
            return
        owner = self.server.owner
        fault = owner.interceptor(path, body) if owner.interceptor is not None else None
        if fault is None:
            status, answer = owner.gateway.handle(path, body, self.client_address[0])
            headers = {}
            if status == 429:
                wait = owner.gateway.retry_after(self.client_address[0], path, body)
                headers["Retry-After"] = str(max(1, wait))
            self._send(status, answer, headers)
        else:
            self._faulty(fault, path, body)

    def _faulty(self, fault: Fault, path: str, body: Any) -> None:
        owner = self.server.owner
        kind = fault.kind

        def process() -> tuple[int, Any]:
            return owner.gateway.handle(path, body, self.client_address[0])

        if kind is FaultKind.FAIL_BEFORE:
            self._send(fault.status, None)
        elif kind is FaultKind.FAIL_AFTER:
            process()
            self._send(fault.status, None)
        elif kind is FaultKind.DELAY_BEFORE:
            owner.stopping.wait(fault.delay_s)
            self._send(*process())
        elif kind is FaultKind.DELAY_AFTER:
            answer = process()
            owner.stopping.wait(fault.delay_s)
            self.close_connection = True  # the client has most likely given up on it
            self._send(*answer)
        elif kind in (FaultKind.DROP_BEFORE, FaultKind.DROP_AFTER):
            if kind is FaultKind.DROP_AFTER:
                process()
            self.close_connection = True  # nothing written: the client sees the socket close
        elif kind is FaultKind.RATE_LIMIT:
            self._send(429, None)
        elif kind is FaultKind.MALFORMED:
            if fault.process:
                process()
            self._send_raw(200, fault.text.encode(), "text/html; charset=utf-8")
        else:
            self._send(200, fault.body)

    def _discard_body(self) -> None:
        """Read an unwanted body so the connection stays usable (or close it if unreadable)."""
        with contextlib.suppress(ValueError):
            length = int(self.headers.get("Content-Length") or 0)
            if 0 <= length <= MAX_BODY:
                if length:
                    self.rfile.read(length)
                return
        self.close_connection = True

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        try:
            payload, content_type = encode(status, body)
        except (TypeError, ValueError):
            log.exception("the answer to %s is not JSON-serialisable", self.path)
            payload, content_type = b"null", "application/json"
            status = 500
        self._send_raw(status, payload, content_type, headers)

    def _send_raw(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

    def _not_found(self) -> None:
        self._discard_body()
        self._send(404, "Not Found")

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_found


class SimServer:
    """Serves a gateway on ``host:port`` (0 = a free port) from a background thread.

    ``start()`` returns the base URL; ``stop()`` closes every connection and joins every
    thread. Also a context manager."""

    def __init__(
        self,
        gateway: SimGateway,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        interceptor: Interceptor | None = None,
    ) -> None:
        self.gateway = gateway
        self.interceptor = interceptor
        self.stopping = threading.Event()
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def connections_accepted(self) -> int:
        """Connections accepted since ``start()`` (keep-alive reuses one)."""
        return 0 if self._httpd is None else self._httpd.accepted

    def start(self) -> str:
        if self._httpd is not None:
            raise RuntimeError("the server is already started")
        self.stopping.clear()
        httpd = _HTTPServer(self._address, self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sim-http-{httpd.server_address[1]}",
        )
        self._thread.start()
        log.info("simulator listening on %s", self.url)
        return self.url

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self.stopping.set()  # ends delayed answers early
        httpd.shutdown()
        thread.join()
        httpd.close_connections()
        httpd.server_close()
        self._httpd = self._thread = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
