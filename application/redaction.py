"""One redaction step for every text that leaves a provider boundary.

Every secret the configuration resolves (LLM keys, exchange keys, passwords inside DSNs,
cache passwords, tokens) is registered once, when the configuration is loaded. From then on
:func:`redact` replaces each of them, and the obvious encodings of each (URL-encoded,
JSON-escaped, a hex key without its ``0x``), with :data:`MARKER`; a ``Bearer <token>`` is
masked whatever the token. It is applied to provider error details before they become
events, to every log record (see :func:`install_log_redaction`) and to every view a
projection writes, so a rebuild cleans views built from events written before.

The registry is process-wide on purpose: a secret registered by one configuration must stay
masked in every text the process emits, whichever component emits it. Registering is
idempotent and secrets are never removed (masking a stale secret costs nothing).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MARKER = "[redacted]"
#: Shorter values are not registered: masking every occurrence of, say, "root" in every log
#: line and view would destroy text without protecting anything worth the name.
MIN_SECRET_LENGTH = 6

_BEARER = re.compile(r"(?i)(\bbearer\s+)(?!\[redacted\])[^\s\"',;}\]\\]+")
_BEARER_BYTES = re.compile(rb"(?i)(\bbearer\s+)(?!\[redacted\])[^\s\"',;}\]\\]+")
_HEX_KEY = re.compile(r"0[xX][0-9a-fA-F]{64}")


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    if _HEX_KEY.fullmatch(secret):
        forms |= {secret[2:], secret[2:].lower(), secret.lower(), secret[2:].upper()}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class SecretRegistry:
    """The secrets of this process and the one step that masks them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def register(self, *secrets: str | None) -> None:
        """Register values (empty and too short ones are ignored)."""
        added = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                added |= _forms(secret)
        with self._lock:
            if added <= self._forms:
                return
            self._forms |= added
            # Longest first, so a form that contains another is masked whole.
            ordered = sorted(self._forms, key=lambda f: (-len(f), f))
            self._text = re.compile("|".join(re.escape(f) for f in ordered))
            self._bytes = re.compile(b"|".join(re.escape(f.encode()) for f in ordered))

    def __len__(self) -> int:
        return len(self._forms)

    def redact(self, text: str) -> str:
        pattern = self._text
        if pattern is not None:
            text = pattern.sub(MARKER, text)
        if "earer" in text or "EARER" in text:
            text = _BEARER.sub(lambda m: m.group(1) + MARKER, text)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes
        if pattern is not None:
            data = pattern.sub(MARKER.encode(), data)
        if b"earer" in data or b"EARER" in data:
            data = _BEARER_BYTES.sub(lambda m: m.group(1) + MARKER.encode(), data)
        return data


SECRETS = SecretRegistry()


def register_secrets(values: Iterable[str | None]) -> None:
    SECRETS.register(*values)


def redact(text: str) -> str:
    """``text`` with every registered secret (and any bearer token) masked."""
    return SECRETS.redact(text)


def redact_bytes(data: bytes) -> bytes:
    """:func:`redact` for UTF-8 bytes (a rendered view, a stored payload)."""
    return SECRETS.redact_bytes(data)


def redact_exception(exc: BaseException) -> str:
    """``Type: message`` of an exception, redacted; for details that quote a provider."""
    return redact(f"{type(exc).__name__}: {exc}")


# -- logging ------------------------------------------------------------------------------


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in a record's message and traceback, in place (idempotent)."""
    if getattr(record, "nof0_redacted", False):
        return record
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = f"{record.msg!s} {record.args!r}"
    record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record.nof0_redacted = True
    return record


class RedactingLogFilter(logging.Filter):
    """A filter for handlers: every record it passes is redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install_log_redaction() -> None:
    """Redact every log record of this process as it is made, whichever logger or handler
    (the test's log capture included) receives it. Idempotent."""
    global _installed
    with SECRETS._lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
