"""The in-process transport sends what ``requests`` would: a payload HTTP could not carry
(Decimal, bytes, a set, NaN) fails here too, before the simulator sees it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from infrastructure.hyperliquid.transport import InProcessTransport


def _echo(path: str, body: Any) -> tuple[int, Any]:
    return 200, {"path": path, "body": body}


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "userFills", "user": "0xab", "startTime": Decimal("1.5")},
        {"type": "l2Book", "coin": b"BTC"},
        {"type": "x", "px": float("nan")},
        {"type": "x", "coins": {"BTC", "ETH"}},
    ],
)
def test_what_http_would_refuse_is_refused_in_process_too(payload: dict[str, Any]) -> None:
    transport = InProcessTransport(_echo)
    with pytest.raises((TypeError, ValueError)):
        transport.post("/info", payload)


def test_the_venue_and_the_caller_get_plain_json_values() -> None:
    transport = InProcessTransport(_echo)
    answer = transport.post("/info", {"type": "x", "n": (1, 2), "k": {"a": 1.5}})
    assert answer == {"path": "/info", "body": {"type": "x", "n": [1, 2], "k": {"a": 1.5}}}
