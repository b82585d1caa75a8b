"""The one redaction step: registered secrets and their encodings, bearer tokens, log records,
stored events and rebuilt views."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote, quote_plus

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.ports import ExchangeError, MissingData, ModelError, VenueRefused
from application.redaction import (
    MARKER,
    MIN_SECRET_LENGTH,
    SECRETS,
    RedactingLogFilter,
    SecretRegistry,
    install_log_redaction,
    redact,
    redact_record,
)
from application.trading import TradingApp
from domain.trader import Trader
from domain.values import SkipReason
from projections.engine import CatchUp, ViewOutput
from projections.status import StatusProjector
from tests.support.fakes import T0

SECRET = "sk-unit/+=Redaction-41c9"
HEX_KEY = "0x" + "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"


def registry(*secrets: str) -> SecretRegistry:
    r = SecretRegistry()
    r.register(*secrets)
    return r


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
    ],
)
def test_a_secret_and_its_encodings_are_masked(form: str) -> None:
    text = f"HTTP 401: invalid key {form}, try again"
    assert registry(SECRET).redact(text) == f"HTTP 401: invalid key {MARKER}, try again"


def test_a_hex_key_is_masked_with_and_without_its_prefix_in_any_case() -> None:
    r = registry(HEX_KEY)
    for form in (HEX_KEY, HEX_KEY[2:], HEX_KEY.upper().replace("0X", "0x"), HEX_KEY[2:].upper()):
        assert form not in r.redact(f"signing with {form}")


def test_any_bearer_token_is_masked_even_unregistered() -> None:
    r = SecretRegistry()
    out = r.redact('headers {"authorization": "Bearer abc.def-123"} and BEARER xyz')
    assert "abc.def-123" not in out
    assert "xyz" not in out
    assert out.count(MARKER) == 2
    assert r.redact(out) == out  # idempotent


def test_short_and_empty_values_are_not_registered() -> None:
    r = registry("", "root", "x" * (MIN_SECRET_LENGTH - 1))
    assert len(r) == 0
    assert r.redact("root user") == "root user"


def test_bytes_are_masked_like_text() -> None:
    r = registry(SECRET)
    data = json.dumps({"detail": f"echo {SECRET}"}, ensure_ascii=False).encode()
    assert SECRET.encode() not in r.redact_bytes(data)
    assert json.loads(r.redact_bytes(data)) == {"detail": f"echo {MARKER}"}


@given(st.text(max_size=40), st.text(max_size=40))
def test_the_secret_never_survives_whatever_surrounds_it(before: str, after: str) -> None:
    r = registry(SECRET)
    assert SECRET not in r.redact(before + SECRET + after).replace(MARKER, "\0")


def test_port_errors_are_redacted_when_made() -> None:
    SECRETS.register(SECRET)
    errors = [
        ModelError("auth_error", f"HTTP 401: {SECRET}"),
        ExchangeError(f"cannot reach the venue with {SECRET}"),
        VenueRefused("refused", f"bad signature for {SECRET}"),
        MissingData(f"no candles from a url with key={quote(SECRET, safe='')}"),
    ]
    for error in errors:
        assert SECRET not in str(error)
        assert quote(SECRET, safe="") not in str(error)
        assert MARKER in str(error)
    assert errors[0].reason == "auth_error"  # the typed reason is untouched
    assert SECRET not in errors[0].detail


def test_log_records_are_redacted_in_message_args_and_traceback() -> None:
    SECRETS.register(SECRET)
    logger = logging.getLogger("nof0.test.redaction")
    try:
        raise RuntimeError(f"provider said {SECRET}")
    except RuntimeError as exc:
        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            __file__,
            1,
            "failed: %s",
            (exc,),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    redact_record(record)
    formatted = logging.Formatter().format(record)
    assert SECRET not in formatted
    assert "provider said" in formatted
    assert MARKER in formatted
    assert RedactingLogFilter().filter(record) is True


def test_every_record_is_redacted_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    SECRETS.register(SECRET)
    install_log_redaction()
    install_log_redaction()  # idempotent: one factory, not two
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything.at.all").info("key=%s", SECRET)
    assert caplog.records[-1].getMessage() == f"key={MARKER}"


class _Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, filename: str) -> bytes | None:
        return self.files.get(filename)

    def write(self, output: ViewOutput) -> None:
        self.files.update(output.files)


def test_a_rebuild_cleans_views_of_events_written_before_the_secret_was_known() -> None:
    late = "sk-late-registered-9d0e"
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    trader = Trader.register(
        config_id="alpha", name="Alpha", model="m1", allocation=Decimal(1000), coins=["BTC"], at=T0
    )
    trader.skip_cycle(
        reason=SkipReason.MISSING_DATA, detail=f"feed said {late}", as_of=T0 + timedelta(minutes=1)
    )
    app.save_trader(trader)  # stored before the secret was registered: kept as written
    stored = [e.detail for e in app.trader_events("alpha") if hasattr(e, "detail")]
    assert any(late in d for d in stored)
    SECRETS.register(late)
    files = _Files()
    CatchUp(app, files, [StatusProjector()]).run_until()
    assert all(late.encode() not in data for data in files.files.values())
    (row,) = msgspec.json.decode(files.files["status.json"])["traders"]
    assert row["last_skip"]["detail"] == f"feed said {MARKER}"


def test_a_registered_secret_is_not_stored_in_a_new_event() -> None:
    SECRETS.register(SECRET)
    app = TradingApp(
        env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"}
    )
    trader = Trader.register(
        config_id="beta", name="Beta", model="m1", allocation=Decimal(1000), coins=["BTC"], at=T0
    )
    trader.skip_cycle(reason=SkipReason.MISSING_DATA, detail=f"feed said {SECRET}", as_of=T0)
    app.save_trader(trader)
    stored = [e.detail for e in app.trader_events("beta") if hasattr(e, "detail")]
    assert stored == [f"feed said {MARKER}"]
    assert redact("nothing secret here") == "nothing secret here"
