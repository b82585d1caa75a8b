"""Nonces for signed actions: unique and increasing per signer, across every trader.

Hyperliquid keeps the 100 highest nonces of each signer and refuses a nonce it has seen
or one below the smallest it keeps. The SDK stamps each call with ``time.time()*1000``,
so two traders signing in the same millisecond collide; here every action of a signer
takes the next value from one manager: the clock's milliseconds, or one more than the
last nonce when the clock has not moved on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class NonceManager:
    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            nonce = max(self._clock_ms(), self._last + 1)
            self._last = nonce
            return nonce

    @property
    def last(self) -> int:
        return self._last


class NonceRegistry:
    """One manager per signing address, shared by every adapter that signs with it."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._managers: dict[str, NonceManager] = {}
        self._lock = threading.Lock()

    def for_signer(self, address: str) -> NonceManager:
        with self._lock:
            key = address.lower()
            manager = self._managers.get(key)
            if manager is None:
                manager = self._managers[key] = NonceManager(self._clock_ms)
            return manager
