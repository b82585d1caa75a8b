"""Atomic JSON views and their namespaces, the event store settings, and the clocks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infrastructure.clock import MIN_REAL_SLEEP_S, ManualClock, ReplayClock
from infrastructure.eventstore import EventStoreError, open_trading_app, postgres_env, sqlite_env
from infrastructure.files import atomic_write
from infrastructure.views.jsonfile import POINTER, JsonViewStore, Namespaces
from projections.engine import ViewOutput

T0 = datetime(2025, 10, 17, tzinfo=UTC)


# -- atomic_write ---------------------------------------------------------------------------


def payload(n: int) -> bytes:
    # Sizes vary a lot so that a torn read would show as invalid JSON or a wrong length.
    return json.dumps({"n": n, "pad": "x" * (1000 + (n * 7919) % 100_000)}).encode()


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "leaderboard.json"
    atomic_write(target, b'{"a": 1}')
    assert target.read_bytes() == b'{"a": 1}'
    atomic_write(target, b"[]")
    assert target.read_bytes() == b"[]"
    assert [p.name for p in tmp_path.iterdir()] == ["leaderboard.json"]


def test_atomic_write_failure_cleans_up_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "view.json"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["view.json"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "trades.json"
    atomic_write(target, payload(0))
    writes = 120
    payloads = [payload(n) for n in range(writes + 1)]
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for n in range(1, writes + 1):
                atomic_write(target, payloads[n])
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    seen: set[int] = set()
    try:
        while not done.is_set() or reads < 50:
            data = target.read_bytes()
            doc = json.loads(data)  # a partial file would not parse
            assert data == payloads[doc["n"]]
            seen.add(doc["n"])
            reads += 1
    finally:
        thread.join()
    assert errors == []
    assert json.loads(target.read_bytes())["n"] == writes
    assert len(seen) > 1  # the reader really raced the writer
    assert [p.name for p in tmp_path.iterdir()] == ["trades.json"]


# -- namespaces -----------------------------------------------------------------------------


def test_namespaces_are_numbered_and_sorted_numerically(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    assert ns.all() == []
    assert ns.current() is None
    names = [ns.create() for _ in range(11)]
    assert names == [f"r{i}" for i in range(1, 12)]
    assert ns.all() == names  # r10 after r9, not after r1
    (ns.root / "scratch").mkdir()
    (ns.root / "r12.tmp").mkdir()
    assert ns.all() == names
    ns.remove("r11")
    assert ns.create() == "r11"
    ns.remove("r3")
    assert ns.create() == "r12"  # the highest number + 1, gaps are not reused


def test_flip_points_current_at_a_namespace(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    r1, r2 = ns.create(), ns.create()
    ns.flip(r1)
    assert ns.current() == "r1"
    assert (ns.root / POINTER).read_text() == "r1"
    ns.flip(r2)
    assert ns.current() == "r2"
    assert sorted(p.name for p in ns.root.iterdir()) == ["CURRENT", "r1", "r2"]
    with pytest.raises(FileNotFoundError, match="r9 does not exist"):
        ns.flip("r9")
    assert ns.current() == "r2"
    assert ns.directory("r2") == ns.root / "r2"


def test_current_ignores_a_dangling_or_garbled_pointer(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    ns.create()
    (ns.root / POINTER).write_text("r7")
    assert ns.current() is None
    (ns.root / POINTER).write_text("../etc")
    assert ns.current() is None
    (ns.root / POINTER).write_text("r1\n")
    assert ns.current() == "r1"


def test_ensure_current(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    assert ns.ensure_current() == "r1"
    assert ns.current() == "r1"
    assert ns.ensure_current() == "r1"
    assert ns.all() == ["r1"]


def test_current_flips_atomically(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    r1, r2 = ns.create(), ns.create()
    ns.flip(r1)
    done = threading.Event()
    errors: list[BaseException] = []

    def flipper() -> None:
        try:
            for i in range(150):
                ns.flip(r2 if i % 2 == 0 else r1)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=flipper)
    thread.start()
    seen: set[str | None] = set()
    try:
        while not done.is_set():
            seen.add(Namespaces(ns.root).current())
    finally:
        thread.join()
    assert errors == []
    assert seen <= {"r1", "r2"}  # never None, never a half-written name
    assert ns.current() == "r1"


def test_remove_refuses_the_current_namespace(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    r1, r2 = ns.create(), ns.create()
    ns.flip(r2)
    with pytest.raises(ValueError, match="r2 is the active namespace"):
        ns.remove(r2)
    assert (ns.root / "r2").is_dir()
    ns.remove(r1)
    assert not (ns.root / "r1").exists()
    assert ns.all() == ["r2"]


def test_rebuild_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    with ns.rebuild_lock():
        with pytest.raises(RuntimeError, match="another rebuild is running"), ns.rebuild_lock():
            pass
        # Another Namespaces on the same directory is refused too.
        with (
            pytest.raises(RuntimeError, match="another rebuild is running"),
            Namespaces(tmp_path / "views").rebuild_lock(),
        ):
            pass
    # Released: the next rebuild gets it.
    with ns.rebuild_lock():
        pass


def test_rebuild_lock_refuses_a_holder_in_another_thread(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with ns.rebuild_lock():
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(5)
        with pytest.raises(RuntimeError), ns.rebuild_lock():
            pass
    finally:
        release.set()
        thread.join()
    with ns.rebuild_lock():
        pass


# -- JsonViewStore --------------------------------------------------------------------------


def test_json_view_store_writes_reads_and_never_resurrects(tmp_path: Path) -> None:
    ns = Namespaces(tmp_path / "views")
    r1, r2 = ns.create(), ns.create()
    ns.flip(r1)
    store = JsonViewStore(ns.directory(r2))
    assert store.read("leaderboard.json") is None
    store.write(
        ViewOutput(
            view="leaderboard",
            position=7,
            files={"leaderboard.json": b'{"rows": []}', "since-inception.json": b"[]"},
        )
    )
    assert store.read("leaderboard.json") == b'{"rows": []}'
    assert store.read("since-inception.json") == b"[]"
    assert sorted(p.name for p in (ns.root / r2).iterdir()) == [
        "leaderboard.json",
        "since-inception.json",
    ]
    ns.remove(r2)
    with pytest.raises(FileNotFoundError, match="is gone"):
        store.write(ViewOutput(view="leaderboard", position=8, files={"leaderboard.json": b"{}"}))
    assert not (ns.root / r2).exists()
    assert ns.all() == ["r1"]


# -- event store settings -------------------------------------------------------------------


def test_sqlite_env_keys_are_prefixed(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path / "events.sqlite3")
    assert env == {
        "NOF0_PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "NOF0_SQLITE_DBNAME": str(tmp_path / "events.sqlite3"),
        "NOF0_SQLITE_LOCK_TIMEOUT": "10",
        "NOF0_AGGREGATE_CACHE_MAXSIZE": "200",
    }
    app = open_trading_app(env)
    try:
        assert (tmp_path / "events.sqlite3").is_file()
    finally:
        app.close()


def test_postgres_env_parses_the_data_source() -> None:
    env = postgres_env(
        "postgresql://alice:s3cret@db.internal:6543/arena", schema="nof0", pool_size=7
    )
    assert env == {
        "NOF0_PERSISTENCE_MODULE": "eventsourcing.postgres",
        "NOF0_POSTGRES_HOST": "db.internal",
        "NOF0_POSTGRES_PORT": "6543",
        "NOF0_POSTGRES_DBNAME": "arena",
        "NOF0_POSTGRES_USER": "alice",
        "NOF0_POSTGRES_PASSWORD": "s3cret",
        "NOF0_POSTGRES_SCHEMA": "nof0",
        "NOF0_POSTGRES_POOL_SIZE": "7",
        "NOF0_POSTGRES_CONNECT_TIMEOUT": "10",
        "NOF0_POSTGRES_LOCK_TIMEOUT": "5",
        "NOF0_AGGREGATE_CACHE_MAXSIZE": "200",
    }


def test_postgres_password_with_special_characters_is_decoded_and_only_there() -> None:
    password = "p@ss:w/rd?#% 1&é"
    encoded = "p%40ss%3Aw%2Frd%3F%23%25%201%26%C3%A9"
    env = postgres_env(f"postgres://bob:{encoded}@127.0.0.1/my%20db", schema="s", pool_size=2)
    assert env["NOF0_POSTGRES_PASSWORD"] == password
    assert env["NOF0_POSTGRES_USER"] == "bob"
    assert env["NOF0_POSTGRES_HOST"] == "127.0.0.1"
    assert env["NOF0_POSTGRES_DBNAME"] == "my db"
    others = [v for k, v in env.items() if k != "NOF0_POSTGRES_PASSWORD"]
    for secret in (password, encoded, "s3cret", "p@ss", "p%40ss"):
        assert not any(secret in v for v in others)


@pytest.mark.parametrize(
    ("source", "user", "password", "port"),
    [
        ("postgresql://carol@localhost/db", "carol", "", "5432"),
        ("postgresql://localhost/db", "postgres", "", "5432"),
        ("postgresql://dave:pw@localhost:5433/db", "dave", "pw", "5433"),
        ("postgresql://us%65r:pw@[::1]/db", "user", "pw", "5432"),
    ],
)
def test_postgres_defaults(source: str, user: str, password: str, port: str) -> None:
    env = postgres_env(source, schema="s", pool_size=1)
    assert env["NOF0_POSTGRES_USER"] == user
    assert env["NOF0_POSTGRES_PASSWORD"] == password
    assert env["NOF0_POSTGRES_PORT"] == port
    assert env["NOF0_POSTGRES_DBNAME"] == "db"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("postgresql://erin:hunter2@localhost:5432/", "names no database"),
        ("postgresql://erin:hunter2@localhost", "names no database"),
        ("mysql://erin:hunter2@localhost/db", "must look like postgresql://"),
        ("postgresql:///db", "must look like postgresql://"),
        ("erin:hunter2@localhost/db", "must look like postgresql://"),
    ],
)
def test_postgres_env_refuses_bad_data_sources(source: str, message: str) -> None:
    with pytest.raises(EventStoreError, match=message) as info:
        postgres_env(source, schema="s", pool_size=1)
    assert "hunter2" not in str(info.value)


# -- clocks ---------------------------------------------------------------------------------


def test_replay_clock_runs_speed_times_faster() -> None:
    before = time.monotonic()
    clock = ReplayClock(T0, speed=600.0)
    after = time.monotonic()
    time.sleep(0.03)
    lo = time.monotonic()
    now = clock.now()
    hi = time.monotonic()
    elapsed = (now - T0).total_seconds()
    assert (lo - after) * 600 <= elapsed <= (hi - before) * 600
    assert elapsed >= 18.0  # at least 0.03 s × 600
    assert clock.speed == 600.0
    assert now.tzinfo is not None


def test_replay_clock_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReplayClock(datetime(2025, 1, 1), speed=1.0)
    with pytest.raises(ValueError, match="positive, got 0"):
        ReplayClock(T0, speed=0)
    with pytest.raises(ValueError, match="positive, got -2"):
        ReplayClock(T0, speed=-2)


def test_replay_clock_resume_only_moves_forward() -> None:
    clock = ReplayClock(T0, speed=60.0)
    later = T0 + timedelta(days=3)
    clock.resume_at(later)
    now = clock.now()
    assert later <= now < later + timedelta(seconds=60)
    # An earlier time does not move the clock back.
    clock.resume_at(T0 + timedelta(days=1))
    assert clock.now() >= now
    assert clock.now() >= later
    # Time keeps running at the same speed after a resume.
    time.sleep(0.02)
    assert clock.now() >= later + timedelta(seconds=1.2)


def test_replay_clock_sleep_is_scaled_with_a_floor() -> None:
    clock = ReplayClock(T0, speed=100.0)
    start = time.monotonic()
    asyncio.run(clock.sleep(5.0))  # 0.05 s of real time
    took = time.monotonic() - start
    assert 0.05 <= took < 2.0
    start = time.monotonic()
    asyncio.run(clock.sleep(0.0))  # never below the floor
    assert time.monotonic() - start >= MIN_REAL_SLEEP_S
    assert MIN_REAL_SLEEP_S == 0.01


def test_manual_clock() -> None:
    clock = ManualClock(T0)
    assert clock.now() == T0
    assert clock.now() == T0  # does not move by itself
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    assert clock.now() == T0 + timedelta(seconds=90)
    clock.resume_at(T0)  # backwards: ignored
    assert clock.now() == T0 + timedelta(seconds=90)
    clock.resume_at(T0 + timedelta(hours=2))
    assert clock.now() == T0 + timedelta(hours=2)
    asyncio.run(clock.sleep(30))
    assert clock.now() == T0 + timedelta(hours=2, seconds=30)
