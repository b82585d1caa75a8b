"""Reopening a store's log in a forked rebuild process, the way ``bootstrap`` does from a
configuration, but from the store's environment (tests and benches hold an app, not a
configuration)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from application.trading import TradingApp
from infrastructure.event_log import StoredLog, connects


def log_opener(
    app: TradingApp, env: dict[str, str]
) -> Callable[[], AbstractContextManager[StoredLog]]:
    """``app``'s log opened afresh (in a child, after the fork): over one connection of its
    own and without DDL; an in-memory log is the fork's copy."""

    @contextmanager
    def reopen() -> Iterator[StoredLog]:
        if not connects(app):
            yield StoredLog(app)
            return
        child = TradingApp(
            env={
                **env,
                "NOF0_CREATE_TABLE": "n",  # the parent made them: no DDL race
                "NOF0_POSTGRES_POOL_SIZE": "1",
                "NOF0_POSTGRES_MAX_OVERFLOW": "0",
            }
        )
        try:
            yield StoredLog(child)
        finally:
            child.close()

    return reopen
