"""Encoded views: the bytes a view route sends, made once per change of the document."""

from __future__ import annotations

import gzip
import zlib

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from interfaces.http.conditional import entity_tag
from interfaces.http.encoded import GZIP_MIN_BYTES, EncodedView, EncodedViews, accepts_gzip


class Board(msgspec.Struct, kw_only=True):
    rows: list[dict[str, float]]
    note: str = ""
    serverTime: int = 0


class NoTime(msgspec.Struct):
    rows: list[int]


def board(rows: int, note: str = "") -> Board:
    return Board(
        rows=[{"equity": 10_000.5 + i, "return_pct": i / 7} for i in range(rows)], note=note
    )


@given(rows=st.integers(0, 200), note=st.text(max_size=40), now=st.integers(0, 2**53))
def test_the_body_is_what_encoding_the_response_gives(rows: int, note: str, now: int) -> None:
    response = board(rows, note)
    view = EncodedView.of(response)
    expected = msgspec.json.encode(msgspec.structs.replace(response, serverTime=now))
    assert view.body(now) == expected
    assert view.etag == entity_tag(expected)  # the same tag whatever the time


@given(rows=st.integers(0, 400), now=st.integers(0, 2**53))
@example(rows=20, now=10_000_000_000_000)  # under the bound at serverTime 0, over it now
def test_the_gzip_body_is_one_member_that_inflates_to_the_body(rows: int, now: int) -> None:
    view = EncodedView.of(board(rows))
    packed = view.gzipped(now)
    # The document decides, once (its size at serverTime 0): one representation whatever
    # the clock's digits, so a view does not flip between gzip and plain from one second
    # to the next.
    if len(view.body(0)) < GZIP_MIN_BYTES:
        assert packed is None
        return
    assert packed is not None
    assert gzip.decompress(packed) == view.body(now)
    inflate = zlib.decompressobj(wbits=31)  # one member only: nothing may be left over
    assert inflate.decompress(packed) == view.body(now)
    assert inflate.eof
    assert inflate.unused_data == b""


def test_a_large_body_is_sent_much_smaller_gzipped() -> None:
    view = EncodedView.of(board(2_000))
    packed = view.gzipped(1)
    assert packed is not None
    assert len(packed) < len(view.body(1)) / 3


def test_a_response_type_without_server_time_last_is_refused() -> None:
    with pytest.raises((TypeError, AttributeError)):
        EncodedView.of(NoTime(rows=[1]))


def test_the_cache_answers_while_the_marker_holds_and_not_after() -> None:
    cache = EncodedViews()
    first = cache.put("f.json", Board, ("m", 1), b"raw-1", board(3))
    assert cache.get("f.json", Board, ("m", 1)) is first
    assert cache.get("f.json", Board, ("m", 2)) is None  # moved: read again
    assert cache.get("f.json", Board, None) is None  # the reader cannot tell: read again
    assert cache.get("f.json", NoTime, ("m", 1)) is None  # another response type


def test_equal_stored_bytes_are_not_decoded_again() -> None:
    cache = EncodedViews()
    first = cache.put("f.json", Board, None, b"raw-1", board(3))
    assert cache.unchanged("f.json", Board, ("m", 5), b"raw-1") is first
    assert cache.get("f.json", Board, ("m", 5)) is first  # and the marker is now known
    assert cache.unchanged("f.json", Board, ("m", 6), b"raw-2") is None
    assert cache.encodes == 1


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("br, gzip, deflate", True),
        ("GZIP", True),
        ("gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("identity", False),
        ("*", True),
        ("gzip;q=nonsense", False),
        ("deflate, br", False),
        ("br, *;q=0.1, gzip;q=0", False),  # gzip's own entry decides, not *'s
        ("*;q=0, gzip", True),
        ("gzip;q=0, gzip", False),  # the first entry for a coding counts
    ],
)
def test_accept_encoding(header: str | None, takes: bool) -> None:
    assert accepts_gzip(header) is takes
