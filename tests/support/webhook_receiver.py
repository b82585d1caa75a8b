"""A local webhook receiver: records every JSON POST; can fail, hang or be slow on purpose."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        owner = self.server.owner
        owner.gate.wait(timeout=30)  # a slow receiver holds here until released
        with owner.lock:
            status = owner.statuses.popleft() if owner.statuses else 200
            owner.attempts += 1
            if status < 300:
                owner.bodies.append(json.loads(raw))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: WebhookReceiver) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class WebhookReceiver:
    """``statuses``: answers for the first requests (then 200)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses: deque[int] = deque(statuses)
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b.get("kind") == kind]
