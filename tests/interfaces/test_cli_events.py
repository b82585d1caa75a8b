"""``nof0 events export`` / ``import``: an arena moved between SQLite stores, verified."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from application.trading import TradingApp
from infrastructure import bootstrap
from infrastructure.event_archive import (
    ArchiveError,
    encode_event,
    export_to_path,
    import_events,
    verify_archive,
)
from infrastructure.eventstore import sqlite_env
from tests.support.archive import SERVER_VARIABLES, cli, split, views, write_archive
from tests.support.arena import DEFAULT_CONFIG, OfflineArena


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A deterministic offline arena (its data dir) and its export."""
    root = tmp_path_factory.mktemp("arena")
    arena = OfflineArena.open(root / "data")
    arena.run_sync(minutes=60)
    archive = root / "arena.ndjson"
    assert cli("events", "export", "--data-dir", str(root / "data"), "--out", str(archive)) == 0
    return root / "data", archive


def config_for(data_dir: Path) -> bootstrap.LoadedConfig:
    return bootstrap.load_config(DEFAULT_CONFIG, data_dir=data_dir, env={})


def stored_count(data_dir: Path) -> int:
    return bootstrap.open_app(config_for(data_dir)).max_position()


def refused(
    capsys: pytest.CaptureFixture[str], archive: Path, target: Path, *fragments: str
) -> None:
    capsys.readouterr()
    assert cli("events", "import", "--data-dir", str(target), str(archive)) == 1
    err = capsys.readouterr().err
    assert err.startswith("import refused: "), err
    for fragment in fragments:
        assert fragment in err, err
    assert stored_count(target) == 0  # nothing written


def test_the_archive_is_documented_ndjson(source: tuple[Path, Path]) -> None:
    data, archive = source
    header, events, trailer = split(archive)
    head = stored_count(data)
    assert header["format"] == "nof0-events"
    assert header["version"] == 1
    assert header["arena"] == "nof0"
    assert header["source"] == "sqlite"
    assert header["events"] == head == header["head"] == len(events) == trailer["events"]
    first = json.loads(events[0])
    assert set(first) == {
        "notification_id",
        "originator_id",
        "originator_version",
        "topic",
        "state",
    }
    assert first["notification_id"] == 1
    assert first["originator_version"] == 1
    assert first["topic"] == "nof0/Trader.Registered"
    assert first["state"]["config_id"] in {"ema-cross", "random-walk", "btc-hold"}
    # The state is the stored JSON, byte for byte.
    app = bootstrap.open_app(config_for(data))
    stored = app.recorder.select_notifications(start=None, limit=1)
    assert events[0].endswith(b',"state":' + stored[0].state + b"}\n")
    assert {json.loads(line)["topic"] for line in events} >= {
        "nof0/Trader.OrderFilled",
        "nof0/Trader.LLMResponded",
    }


def test_export_then_import_into_another_sqlite_gives_the_same_views(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, archive = source
    target = tmp_path / "restored"
    capsys.readouterr()
    assert cli("events", "import", "--data-dir", str(target), str(archive)) == 0
    out = capsys.readouterr().out
    _, events, trailer = split(archive)
    assert f"imported {len(events)} of {len(events)} events" in out
    assert trailer["sha256"] in out
    assert "numbered the events differently" not in out

    copy = tmp_path / "source-copy"
    shutil.copytree(data, copy)
    assert cli("projections", "rebuild", "--data-dir", str(copy)) == 0
    assert cli("projections", "rebuild", "--data-dir", str(target)) == 0
    source_views, target_views = views(config_for(copy)), views(config_for(target))
    assert len(source_views) > 5
    assert source_views == target_views

    # And the restored store exports to the same event lines.
    again = tmp_path / "again.ndjson"
    assert cli("events", "export", "--data-dir", str(target), "--out", str(again)) == 0
    assert split(again)[1:] == split(archive)[1:]


def test_export_to_stdout_writes_the_same_lines(
    source: tuple[Path, Path], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data, archive = source
    capsysbinary.readouterr()
    assert cli("events", "export", "--data-dir", str(data)) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.splitlines()[1:] == archive.read_bytes().splitlines()[1:]
    assert b"exported" in captured.err


def test_a_corrupted_line_is_refused_and_nothing_is_written(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, archive = source
    lines = archive.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5][:40] + b"#" + lines[5][41:]
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(b"".join(lines))
    refused(capsys, broken, tmp_path / "t", "line 6 is not a valid event line")


def test_an_altered_state_fails_the_digest(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, archive = source
    text = archive.read_bytes()
    altered = text.replace(b'"allocation":"3000.00"', b'"allocation":"9000.00"', 1)
    assert altered != text
    bad = tmp_path / "altered.ndjson"
    bad.write_bytes(altered)
    refused(capsys, bad, tmp_path / "t", "digest mismatch")


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[: b.rindex(b'{"end"')], "truncated: the last line"),
        (lambda b: b[:-1], "truncated: the last line"),
        (lambda b: b"", "is empty"),
    ],
    ids=["half", "no-trailer", "no-final-newline", "empty"],
)
def test_a_truncated_file_is_refused(
    source: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cut: object,
    message: str,
) -> None:
    _, archive = source
    short = tmp_path / "short.ndjson"
    short.write_bytes(cut(archive.read_bytes()))  # type: ignore[operator]
    refused(capsys, short, tmp_path / "t", message)


def test_a_missing_event_is_found_even_with_a_consistent_digest(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, archive = source
    header, events, _ = split(archive)
    # Drop a trader's second event; the count and digest are recomputed to match.
    parsed = [json.loads(e) for e in events]
    longer = {p["originator_id"] for p in parsed if p["originator_version"] == 3}
    victim = next(
        i
        for i, p in enumerate(parsed)
        if p["originator_version"] == 2 and p["originator_id"] in longer
    )
    gap = tmp_path / "gap.ndjson"
    write_archive(gap, header, events[:victim] + events[victim + 1 :])
    refused(capsys, gap, tmp_path / "t", "jumps to version 3, expected 2")


def test_counts_that_disagree_are_refused(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, archive = source
    header, events, trailer = split(archive)
    lines = archive.read_bytes().splitlines(keepends=True)
    more = {**header, "events": header["events"] + 1, "head": header["head"] + 1}
    lines[0] = json.dumps(more).encode() + b"\n"
    wrong = tmp_path / "count.ndjson"
    wrong.write_bytes(b"".join(lines))
    refused(capsys, wrong, tmp_path / "t", f"holds {len(events)} events; the header says")
    lines[0] = json.dumps({**header, "format": "something-else"}).encode() + b"\n"
    wrong.write_bytes(b"".join(lines))
    refused(capsys, wrong, tmp_path / "t", "expected 'nof0-events'")
    lines[0] = json.dumps({**header, "version": 2}).encode() + b"\n"
    wrong.write_bytes(b"".join(lines))
    refused(capsys, wrong, tmp_path / "t", "version 2; this nof0 reads 1")
    assert trailer["events"] == len(events)


def test_an_unknown_topic_is_refused(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, archive = source
    header, events, _ = split(archive)
    index = next(i for i, e in enumerate(events) if b'"topic":"nof0/Trader.' in e)
    events[index] = events[index].replace(b'"topic":"nof0/Trader.', b'"topic":"nof0/Nothing.')
    odd = tmp_path / "topic.ndjson"
    write_archive(odd, header, events)
    refused(capsys, odd, tmp_path / "t", f"line {index + 2}: the event does not decode")


def test_a_non_empty_store_is_refused_unless_it_holds_a_prefix(
    source: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, archive = source
    header, events, _ = split(archive)
    target = tmp_path / "t"

    # An interrupted import (the first 40 events landed) is resumed.
    prefix = tmp_path / "prefix.ndjson"
    write_archive(prefix, header, events[:40])
    assert cli("events", "import", "--data-dir", str(target), str(prefix)) == 0
    capsys.readouterr()
    assert cli("events", "import", "--data-dir", str(target), str(archive)) == 0
    out = capsys.readouterr().out
    assert f"imported {len(events) - 40} of {len(events)} events" in out
    assert "(40 were already there)" in out
    assert stored_count(target) == len(events)

    # A store holding more than the archive, or different events, is refused as it is.
    capsys.readouterr()
    assert cli("events", "import", "--data-dir", str(target), str(prefix)) == 1
    assert "more than the 40" in capsys.readouterr().err
    other = tmp_path / "other.ndjson"
    changed = events[0].replace(b'"3000.00"', b'"3100.00"')
    assert changed != events[0]
    write_archive(other, header, [changed, *events[1:]])
    assert cli("events", "import", "--data-dir", str(target), str(other)) == 1
    err = capsys.readouterr().err
    assert "is not empty and is not a prefix" in err
    assert "event #1" in err
    assert stored_count(target) == len(events)

    # An engine's own store (the source) is not a prefix of a foreign archive either.
    assert cli("events", "import", "--data-dir", str(data), str(other)) == 1
    assert "not a prefix" in capsys.readouterr().err


def test_binary_states_travel_as_base64(source: tuple[Path, Path], tmp_path: Path) -> None:
    """A compressed store's states are not JSON: they are carried as base64, and only a
    store with the same compressor accepts them."""
    data, _ = source
    plain = bootstrap.open_app(config_for(data))
    zipped_env = {
        **sqlite_env(tmp_path / "zipped.sqlite3"),
        "NOF0_COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    zipped = TradingApp(env=zipped_env)
    notifications = plain.recorder.select_notifications(start=None, limit=100)
    zipped.recorder.insert_events(
        [zipped.mapper.to_stored_event(plain.mapper.to_domain_event(n)) for n in notifications]
    )
    archive = tmp_path / "zipped.ndjson"
    report = export_to_path(zipped, "nof0", archive)
    assert report.events == 100
    first = json.loads(split(archive)[1][0])
    assert "state" not in first
    assert "state_b64" in first

    restored = TradingApp(
        env={**zipped_env, "NOF0_SQLITE_DBNAME": str(tmp_path / "restored.sqlite3")}
    )
    result = import_events(archive, restored)
    assert result.written == 100
    assert result.ids_preserved
    assert [
        (n.originator_id, n.originator_version, n.topic, n.state)
        for n in restored.recorder.select_notifications(start=None, limit=200)
    ] == [
        (n.originator_id, n.originator_version, n.topic, n.state)
        for n in zipped.recorder.select_notifications(start=None, limit=200)
    ]
    uncompressed = TradingApp(env=sqlite_env(tmp_path / "plain.sqlite3"))
    with pytest.raises(ArchiveError, match="does not decode"):
        verify_archive(archive, uncompressed)
    assert uncompressed.max_position() == 0


def test_an_event_line_keeps_the_state_bytes_or_falls_back_to_base64() -> None:
    def line(state: bytes) -> dict[str, object]:
        notification = SimpleNamespace(
            id=7,
            originator_id="fc4c449d-79b5-5acf-bbb7-3933d5e8f618",
            originator_version=3,
            topic="nof0/Trader.Paused",
            state=state,
        )
        encoded = encode_event(notification)  # type: ignore[arg-type]
        assert encoded.endswith(b"\n")
        assert encoded.count(b"\n") == 1
        decoded: dict[str, object] = json.loads(encoded)
        return decoded

    assert line(b'{"a":1.50,"b":"\\u00e9"}')["state"] == {"a": 1.5, "b": "é"}
    for not_json in (b"\x78\x9c\x00", b'{"a":1}\n', b" {}", b"", b"not json", b'{"a":"\xff"}'):
        assert "state_b64" in line(not_json), not_json


def test_a_batch_the_store_refuses_stops_the_import_and_a_rerun_resumes(
    source: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventsourcing.persistence import OperationalError

    _, archive = source
    target = TradingApp(env=sqlite_env(tmp_path / "target.sqlite3"))
    real_insert = target.recorder.insert_events
    calls = {"n": 0}

    def flaky(stored_events: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError("database is locked (injected)")
        return real_insert(stored_events, **kwargs)

    monkeypatch.setattr(target.recorder, "insert_events", flaky)
    with pytest.raises(ArchiveError, match="refused a batch after 14 events were written"):
        import_events(archive, target, batch=7)
    assert target.max_position() == 14  # two whole batches, nothing of the third

    result = import_events(archive, target, batch=7)
    total = len(split(archive)[1])
    assert (result.already_present, result.written) == (14, total - 14)
    assert result.ids_preserved
    assert target.max_position() == total
