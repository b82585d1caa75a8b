"""Rebuilding the views against in-memory stores: the fresh namespace gets the views, the
mirror its copy, readers flip to it, the old namespaces go, and the tables follow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from application.trading import TradingApp
from domain.trader import Trader
from projections.engine import ViewOutput
from projections.rebuild import Mirror, rebuild_views
from projections.status import StatusProjector
from projections.view_positions import view_positions
from tests.support.fakes import T0


class Files:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def read(self, filename: str) -> bytes | None:
        return self.files.get(filename)

    def write(self, output: ViewOutput) -> None:
        self.files.update(output.files)


class Generations:
    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.now: str | None = names[-1] if names else None
        self.log: list[str] = []

    @contextmanager
    def rebuild_lock(self) -> Iterator[None]:
        self.log.append("lock")
        yield
        self.log.append("unlock")

    def create(self) -> str:
        name = f"gen{len(self.names) + 1}"
        self.names.append(name)
        return name

    def current(self) -> str | None:
        return self.now

    def flip(self, name: str) -> None:
        self.now = name
        self.log.append(f"flip {name}")

    def all(self) -> list[str]:
        return list(self.names)

    def remove(self, name: str) -> None:
        self.names.remove(name)
        self.log.append(f"remove {name}")


class Tables:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def rebuild(self, head: int, bulk: object = None) -> int:
        assert bulk is not None  # the rebuild's own bulk reader
        self.log.append(f"tables {head}")
        return head


def test_a_rebuild_fills_a_fresh_namespace_and_its_mirror_then_flips_both() -> None:
    app = TradingApp(env={"NOF0_PERSISTENCE_MODULE": "eventsourcing.popo"})
    trader = Trader.register(
        config_id="alpha", name="Alpha", model="m1", allocation=Decimal(1000), coins=["BTC"], at=T0
    )
    trader.pause("operator", "lunch", T0)
    app.save_trader(trader)
    primary: dict[str, Files] = {}
    copies: dict[str, Files] = {}
    ours, theirs = Generations("gen1"), Generations("gen1")

    def store(name: str) -> Files:
        return primary.setdefault(name, Files())

    def copy(name: str) -> Files:
        return copies.setdefault(name, Files())

    report = rebuild_views(
        app,
        ours,
        store,
        [StatusProjector()],
        mirror=Mirror(store=copy, namespaces=theirs),
        tables=lambda: Tables(ours.log),
        batch_size=1,
    )
    assert (report.namespace, report.previous, report.head, report.tables) == (
        "gen2",
        "gen1",
        2,
        2,
    )
    assert report.events == 2
    assert ours.log == ["lock", "flip gen2", "remove gen1", "tables 2", "unlock"]
    assert theirs.log == ["flip gen2", "remove gen1"]
    assert primary["gen2"].files["status.json"] == copies["gen2"].files["status.json"]
    rows = view_positions(
        app.max_position(), [("json:gen2", primary["gen2"])], lambda: [StatusProjector()]
    )
    assert [(r.store, r.view, r.position, r.lag) for r in rows] == [
        ("json:gen2", "status_v1", 2, 0)
    ]
