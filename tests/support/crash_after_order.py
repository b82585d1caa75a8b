"""Run the offline arena and die (``os._exit``) right after the venue accepted the first
entry order: the engine is killed between sending an order and recording its fill.

    python -m tests.support.crash_after_order DATA_DIR
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.support.arena import OfflineArena
from tests.support.engine_dies_on_order import KILLED, entry_cloid


def main(data_dir: Path) -> int:
    arena = OfflineArena.open(data_dir)
    exchange = arena.engine.arena.syncs[0].exchange
    transport = exchange.transport  # type: ignore[attr-defined]
    send = transport.post

    def post(path: str, payload: Any) -> Any:
        answer = send(path, payload)
        cloid = entry_cloid(path, payload)
        if cloid:
            (data_dir / "killed-after").write_text(cloid)
            os._exit(KILLED)  # the venue has the order; the engine never hears back
        return answer

    transport.post = post
    asyncio.run(arena.run(60))
    return 0  # no order in an hour: the caller's assertion says so


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
