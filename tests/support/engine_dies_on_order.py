"""``nof0 run`` that can be made to die mid-cycle: once ``DATA_DIR/arm`` names a trader,
the engine ``os._exit``s right after the venue accepted that trader's next entry order,
before anything of it is recorded (the order is out, the fill is not booked, the cycle
never finishes). Until then it is the plain engine.

    python -m tests.support.engine_dies_on_order run --data-dir DATA_DIR ...

Leaves ``DATA_DIR/killed-after`` with the order's cloid.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from application.fenced_exchange import acting_trader
from infrastructure.hyperliquid.transport import HttpTransport
from interfaces.cli import main as nof0

KILLED = 137


def arm(data_dir: Path, trader: str) -> None:
    (data_dir / "arm").write_text(trader)


def killed_after(data_dir: Path) -> str | None:
    """The cloid the engine died after sending, or None while it lives."""
    marker = data_dir / "killed-after"
    return marker.read_text() if marker.exists() else None


def entry_cloid(path: str, payload: Mapping[str, Any]) -> str | None:
    """The cloid of an entry order (a limit order, not reduce-only) in this request."""
    if path != "/exchange":
        return None
    action = payload.get("action", {})
    if action.get("type") != "order":
        return None
    order = action["orders"][0]
    return str(order["c"]) if "limit" in order["t"] and not order.get("r") else None


def install(data_dir: Path) -> None:
    send = HttpTransport.post

    def post(self: HttpTransport, path: str, payload: Mapping[str, Any]) -> Any:
        answer = send(self, path, payload)
        armed = data_dir / "arm"
        cloid = entry_cloid(path, payload)
        # The thread the engine posts from carries the acting trader (asyncio.to_thread).
        if cloid and armed.exists() and acting_trader() == armed.read_text():
            (data_dir / "killed-after").write_text(cloid)
            os._exit(KILLED)  # the venue has the order; this engine never hears back
        return answer

    HttpTransport.post = post  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    data_dir = Path(argv[argv.index("--data-dir") + 1])
    data_dir.mkdir(parents=True, exist_ok=True)
    install(data_dir)
    return nof0(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
