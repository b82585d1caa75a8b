"""Find every secret a configuration resolves, so it can be registered for redaction.

A value is a secret when its key names one (``api_key``, ``private_key``, ``Pass``,
``password``, ``token``, ``secret``...) or when it is the password part of a connection
string (``postgresql://user:PASSWORD@host/db``, ``redis://:PASSWORD@host``, or the
``password=PASSWORD`` form of a libpq DSN), wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

#: Keys whose string values are secrets. ``token`` alone, not ``max_completion_tokens``.
_SECRET_KEY = re.compile(r"(?i)(key|pass(word)?|secret|private|(^|_)token$|credential|webhook)")
_NOT_SECRET_KEY = re.compile(r"(?i)^(key_env|.*_env|.*_file)$")
_DSN_PASSWORD = re.compile(r"(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def connection_password(value: str) -> str | None:
    """The password written inside a URL or libpq DSN, if any."""
    if "://" in value:
        try:
            password = urlsplit(value.strip()).password
        except ValueError:
            return None
        return unquote(password) if password else None
    match = _DSN_PASSWORD.search(value)
    if match:
        raw = match.group(1)
        return raw[1:-1].replace("\\'", "'") if raw.startswith("'") else raw
    return None


def secret_values(data: Any, key: str = "") -> Iterator[str]:
    """Every secret in a parsed YAML document (mappings, lists, scalars)."""
    if isinstance(data, dict):
        for name, value in data.items():
            yield from secret_values(value, str(name))
    elif isinstance(data, list):
        for item in data:
            yield from secret_values(item, key)
    elif isinstance(data, str) and data:
        if _SECRET_KEY.search(key) and not _NOT_SECRET_KEY.match(key):
            yield data
        password = connection_password(data)
        if password:
            yield password
