"""Redis views: each view's documents, cache keys and position in one MULTI/EXEC."""

from __future__ import annotations

import redis

from projections.engine import ViewOutput


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def pointer(self) -> str:
        return f"{self.prefix}:views:current"

    @property
    def version(self) -> str:
        """Raised with every write and flip: the API's marker that a document may have moved."""
        return f"{self.prefix}:views:version"

    def document(self, namespace: str, filename: str) -> str:
        return f"{self.prefix}:{namespace}:api:{filename}"

    def extra(self, namespace: str, key: str) -> str:
        return f"{self.prefix}:{namespace}:{key}"

    def position(self, namespace: str, view: str) -> str:
        return f"{self.prefix}:{namespace}:proj:{view}:position"

    def pattern(self, namespace: str) -> str:
        return f"{self.prefix}:{namespace}:*"


class RedisViewStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys, namespace: str) -> None:
        self.client = client
        self.keys = keys
        self.namespace = namespace

    def read(self, filename: str) -> bytes | None:
        value = self.client.get(self.keys.document(self.namespace, filename))
        return value if isinstance(value, bytes) else None

    def write(self, output: ViewOutput) -> None:
        pipe = self.client.pipeline(transaction=True)
        for filename, data in output.files.items():
            pipe.set(self.keys.document(self.namespace, filename), data)
        for key, data in output.keys.items():
            pipe.set(self.keys.extra(self.namespace, key), data)  # noqa: S610 - not Django
        pipe.set(self.keys.position(self.namespace, output.view), output.position)
        pipe.incr(self.keys.version)
        pipe.execute()


class RedisNamespaces:
    """Namespaces of the Redis views, flipped with one pointer key."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.client = client
        self.keys = keys

    def current(self) -> str | None:
        value = self.client.get(self.keys.pointer)
        return value.decode() if isinstance(value, bytes) else None

    def flip(self, namespace: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.pointer, namespace)
        pipe.incr(self.keys.version)
        pipe.execute()

    def remove(self, namespace: str) -> None:
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self.keys.pattern(namespace), count=500):
            batch.append(key)
            if len(batch) >= 500:
                self.client.delete(*batch)
                batch.clear()
        if batch:
            self.client.delete(*batch)
