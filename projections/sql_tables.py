"""The seed's SQL read tables, for analysts and Grafana's SQL panels.

A deterministic reducer from events to row upserts, independent of the database: the
infrastructure writes the rows, this projection's state and its position in one
transaction, so a batch is applied exactly once and a rebuild gives the same tables.

Tables (seed design doc, "PostgreSQL 数据库存储"); every row carries ``event_position``,
the notification id of the last event that wrote it:

* ``traders``: one row per trader (config, allocation, model, paused or not);
* ``trader_positions``: closed positions (entry and exit, P&L, fees, funding);
* ``trader_orders``: entries, exits, stops and targets with their latest status;
* ``trader_fills``: every fill (price, size, commission);
* ``trader_performance``: a realised snapshot at each closed position (equity on the
  allocation plus realised P&L, cumulative P&L, Sharpe over per-trade returns, win rate);
* ``decision_cycles``: one row per cycle (prompt digest, decisions as JSON, outcome);
* ``llm_conversations``: the prompt and the answer of each cycle, tokens, cost, model;
* ``decision_validations``: the risk validation of each decision (rejected with its rule,
  or passed when it became an order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from application.redaction import redact
from domain.ledger import add_return, sharpe_ratio
from domain.trader import Trader
from projections.common import originator

VERSION = 1
NAME = f"sql_tables_v{VERSION}"

#: Column types: text, integer, numeric (exact, as Decimal), timestamp (UTC), boolean, json.
Column = tuple[str, str]


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _table(name: str, key: tuple[str, ...], *columns: Column) -> Table:
    return Table(name, key, (*columns, ("event_position", "integer")))


TABLES: tuple[Table, ...] = (
    _table(
        "traders",
        ("trader_id",),
        ("trader_id", "text"),
        ("name", "text"),
        ("model", "text"),
        ("allocation", "numeric"),
        ("coins", "json"),
        ("paused", "boolean"),
        ("pause_reason", "text"),
        ("registered_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    _table(
        "trader_positions",
        ("trader_id", "entry_order_id", "exit_order_id"),
        ("trader_id", "text"),
        ("entry_order_id", "text"),
        ("exit_order_id", "text"),
        ("symbol", "text"),
        ("side", "text"),
        ("size", "numeric"),
        ("leverage", "integer"),
        ("entry_price", "numeric"),
        ("exit_price", "numeric"),
        ("gross_pnl", "numeric"),
        ("fees", "numeric"),
        ("funding", "numeric"),
        ("pnl", "numeric"),
        ("close_reason", "text"),
        ("opened_at", "timestamp"),
        ("closed_at", "timestamp"),
    ),
    _table(
        "trader_orders",
        ("trader_id", "order_id"),
        ("trader_id", "text"),
        ("order_id", "text"),
        ("venue_order_id", "integer"),
        ("cycle_id", "text"),
        ("symbol", "text"),
        ("side", "text"),
        ("kind", "text"),
        ("reduce_only", "boolean"),
        ("price", "numeric"),
        ("trigger_price", "numeric"),
        ("size", "numeric"),
        ("filled_size", "numeric"),
        ("status", "text"),
        ("status_reason", "text"),
        ("placed_at", "timestamp"),
        ("updated_at", "timestamp"),
    ),
    _table(
        "trader_fills",
        ("trader_id", "event_id"),
        ("trader_id", "text"),
        ("event_id", "integer"),
        ("order_id", "text"),
        ("fill_id", "text"),
        ("symbol", "text"),
        ("side", "text"),
        ("fill_price", "numeric"),
        ("fill_size", "numeric"),
        ("commission", "numeric"),
        ("liquidity", "text"),
        ("filled_at", "timestamp"),
    ),
    _table(
        "trader_performance",
        ("trader_id", "event_id"),
        ("trader_id", "text"),
        ("event_id", "integer"),
        ("timestamp", "timestamp"),
        ("equity", "numeric"),
        ("pnl", "numeric"),
        ("sharpe_ratio", "numeric"),
        ("win_rate", "numeric"),
        ("closed_positions", "integer"),
    ),
    _table(
        "decision_cycles",
        ("trader_id", "cycle_id"),
        ("trader_id", "text"),
        ("cycle_id", "text"),
        ("cycle_no", "integer"),
        ("timestamp", "timestamp"),
        ("model", "text"),
        ("prompt_version", "text"),
        ("prompt_digest", "text"),
        ("snapshot_digest", "text"),
        ("decisions_json", "json"),
        ("outcome", "text"),
        ("error", "text"),
    ),
    _table(
        "llm_conversations",
        ("trader_id", "cycle_id"),
        ("trader_id", "text"),
        ("cycle_id", "text"),
        ("timestamp", "timestamp"),
        ("model", "text"),
        ("prompt", "text"),
        ("response", "text"),
        ("tokens_in", "integer"),
        ("tokens_out", "integer"),
        ("cost_usd", "numeric"),
        ("latency_ms", "integer"),
        ("cached", "boolean"),
    ),
    _table(
        "decision_validations",
        ("trader_id", "event_id"),
        ("trader_id", "text"),
        ("event_id", "integer"),
        ("cycle_id", "text"),
        ("timestamp", "timestamp"),
        ("symbol", "text"),
        ("action", "text"),
        ("validation_result", "text"),
        ("rule", "text"),
        ("error_msg", "text"),
        ("details", "json"),
    ),
)
TABLE_BY_NAME = {table.name: table for table in TABLES}


@dataclass(frozen=True)
class Row:
    """An upsert: the table's key columns plus the columns this event sets."""

    table: str
    values: dict[str, Any]
    #: Columns added to (not replacing) the stored value; the value written on insert.
    add: dict[str, Any] = field(default_factory=dict)


class TraderBook(msgspec.Struct):
    config_id: str
    allocation: Decimal
    realised: Decimal = Decimal(0)
    closed: int = 0
    wins: int = 0
    returns: tuple[int, float, float] = (0, 0.0, 0.0)


class SqlTablesState(msgspec.Struct):
    name: str = NAME
    position: int = 0
    traders: dict[str, TraderBook] = {}


_ENCODER = msgspec.json.Encoder(decimal_format="string")
_STATE = msgspec.json.Decoder(SqlTablesState)


def encode_state(state: SqlTablesState) -> bytes:
    return _ENCODER.encode(state)


def decode_state(raw: bytes) -> SqlTablesState:
    state = _STATE.decode(raw)
    if state.name != NAME:
        raise ValueError(f"the SQL tables hold {state.name!r}, expected {NAME!r}: rebuild them")
    return state


def _json(value: Any) -> str:
    return redact(_ENCODER.encode(value).decode())


def _text(value: str | None) -> str | None:
    return None if value is None else redact(value)


class SqlTablesProjector:
    """``apply`` mutates the state and returns the rows one event writes."""

    def initial(self) -> SqlTablesState:
        return SqlTablesState()

    def handles(self) -> frozenset[type[Any]]:
        """The event classes that write rows (a bulk rebuild decodes only these)."""
        # A handler named for no event class is a bug, not a class to leave out.
        named = [getattr(Trader, n[4:]) for n in dir(self) if n.startswith("_on_")]
        return frozenset({Trader.Registered, *named})

    def apply(
        self, state: SqlTablesState, position: int, event: Any, kind: type[Any] | None = None
    ) -> list[Row]:
        """``kind``: the event's class, when ``event`` is a rebuild's decoded fields rather
        than the domain event."""
        state.position = position
        kind = kind or type(event)
        if kind is Trader.Registered:
            book = TraderBook(config_id=event.config_id, allocation=event.allocation)
            state.traders[originator(event)] = book
            return [
                self._row(
                    "traders",
                    position,
                    trader_id=event.config_id,
                    name=_text(event.name),
                    model=event.model,
                    allocation=event.allocation,
                    coins=_json(event.coins),
                    paused=False,
                    pause_reason=None,
                    registered_at=event.timestamp,
                    updated_at=event.timestamp,
                )
            ]
        if not issubclass(kind, Trader.Event):
            return []
        book_or_none = state.traders.get(originator(event))
        if book_or_none is None:
            return []
        handler = getattr(self, f"_on_{kind.__name__}", None)
        if handler is None:
            return []
        rows: list[Row] = handler(book_or_none, position, event)
        return rows

    @staticmethod
    def _row(table: str, position: int, **values: Any) -> Row:
        values["event_position"] = position
        return Row(table, values)

    # -- traders ----------------------------------------------------------------------

    def _on_CapitalAllocated(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        book.allocation = event.allocation
        return [
            self._row(
                "traders",
                position,
                trader_id=book.config_id,
                allocation=event.allocation,
                updated_at=event.timestamp,
            )
        ]

    def _on_Paused(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "traders",
                position,
                trader_id=book.config_id,
                paused=True,
                pause_reason=_text(event.reason),
                updated_at=event.timestamp,
            )
        ]

    def _on_Resumed(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "traders",
                position,
                trader_id=book.config_id,
                paused=False,
                pause_reason=None,
                updated_at=event.timestamp,
            )
        ]

    def _on_ModelSwitched(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "traders",
                position,
                trader_id=book.config_id,
                model=event.to_model,
                updated_at=event.timestamp,
            )
        ]

    # -- cycles and the model -----------------------------------------------------------

    def _on_DecisionRequested(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        key = {"trader_id": book.config_id, "cycle_id": event.cycle_id}
        return [
            self._row(
                "decision_cycles",
                position,
                **key,
                cycle_no=event.cycle_no,
                timestamp=event.as_of,
                model=event.model,
                prompt_version=event.prompt_version,
                prompt_digest=event.prompt_digest,
                snapshot_digest=event.snapshot_digest,
                outcome="asked",
            ),
            self._row(
                "llm_conversations",
                position,
                **key,
                timestamp=event.timestamp,
                model=event.model,
                prompt=_text(event.user_prompt),
            ),
        ]

    def _on_LLMResponded(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        key = {"trader_id": book.config_id, "cycle_id": event.cycle_id}
        return [
            self._row(
                "decision_cycles",
                position,
                **key,
                decisions_json=_json(event.decisions),
                outcome="decided",
                model=event.model,
            ),
            self._row(
                "llm_conversations",
                position,
                **key,
                model=event.model,
                response=_text(event.raw_text),
                tokens_in=event.tokens_in,
                tokens_out=event.tokens_out,
                cost_usd=event.cost_usd,
                latency_ms=event.latency_ms,
                cached=event.cached,
            ),
        ]

    def _on_LLMFailed(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        key = {"trader_id": book.config_id, "cycle_id": event.cycle_id}
        return [
            self._row(
                "decision_cycles",
                position,
                **key,
                outcome="failed",
                error=_text(f"{event.reason}: {event.detail}"),
                model=event.model,
            ),
            self._row(
                "llm_conversations",
                position,
                **key,
                model=event.model,
                response=_text(event.raw_text),
                latency_ms=event.latency_ms,
            ),
        ]

    def _on_RiskRejected(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "decision_validations",
                position,
                trader_id=book.config_id,
                event_id=position,
                cycle_id=event.cycle_id,
                timestamp=event.timestamp,
                symbol=event.coin,
                action=event.signal,
                validation_result="rejected",
                rule=event.rule,
                error_msg=_text(event.detail),
                details=_json(event.values),
            )
        ]

    # -- orders, fills, positions -------------------------------------------------------

    def _on_OrderPlaced(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        rows = [
            self._row(
                "trader_orders",
                position,
                trader_id=book.config_id,
                order_id=event.cloid,
                cycle_id=event.cycle_id,
                symbol=event.coin,
                side=event.side,
                kind=event.intent,
                reduce_only=event.reduce_only,
                price=event.limit_price,
                size=event.size,
                filled_size=Decimal(0),
                status="placed",
                placed_at=event.timestamp,
                updated_at=event.timestamp,
            )
        ]
        if not event.reduce_only:
            rows.append(
                self._row(
                    "decision_validations",
                    position,
                    trader_id=book.config_id,
                    event_id=position,
                    cycle_id=event.cycle_id,
                    timestamp=event.timestamp,
                    symbol=event.coin,
                    action=event.intent,
                    validation_result="passed",
                )
            )
        return rows

    def _on_ProtectionPlaced(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "trader_orders",
                position,
                trader_id=book.config_id,
                order_id=event.cloid,
                symbol=event.coin,
                side=event.side,
                kind=event.kind,
                reduce_only=True,
                price=event.limit_price,
                trigger_price=event.trigger_price,
                size=event.size,
                filled_size=Decimal(0),
                status="placed",
                placed_at=event.timestamp,
                updated_at=event.timestamp,
            )
        ]

    def _on_ProtectionConfirmed(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return [
            self._row(
                "trader_orders",
                position,
                trader_id=book.config_id,
                order_id=event.cloid,
                venue_order_id=event.oid,
                status="resting",
                updated_at=event.timestamp,
            )
        ]

    def _status(
        self, book: TraderBook, position: int, event: Any, status: str, reason: str
    ) -> list[Row]:
        return [
            self._row(
                "trader_orders",
                position,
                trader_id=book.config_id,
                order_id=event.cloid,
                status=status,
                status_reason=_text(reason),
                updated_at=event.timestamp,
            )
        ]

    def _on_OrderRejected(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return self._status(book, position, event, "rejected", f"{event.reason}: {event.detail}")

    def _on_OrderCanceled(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return self._status(book, position, event, "canceled", event.reason)

    def _on_ProtectionCanceled(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        return self._status(book, position, event, "canceled", event.reason)

    def _on_OrderFilled(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        order: dict[str, Any] = {
            "trader_id": book.config_id,
            "order_id": event.cloid,
            "status": "filled" if event.final else "partially_filled",
            "updated_at": event.timestamp,
        }
        if event.oid is not None:
            order["venue_order_id"] = event.oid
        return [
            self._row(
                "trader_fills",
                position,
                trader_id=book.config_id,
                event_id=position,
                order_id=event.cloid,
                fill_id=event.fill_id,
                symbol=event.coin,
                side=event.side,
                fill_price=event.price,
                fill_size=event.size,
                commission=event.fee,
                liquidity=event.liquidity,
                filled_at=event.timestamp,
            ),
            Row(
                "trader_orders", {**order, "event_position": position}, {"filled_size": event.size}
            ),
        ]

    def _on_PositionClosed(self, book: TraderBook, position: int, event: Any) -> list[Row]:
        equity_before = book.allocation + book.realised
        book.realised += event.net_pnl
        book.closed += 1
        if event.net_pnl > 0:
            book.wins += 1
        if equity_before > 0:
            book.returns = add_return(book.returns, float(event.net_pnl / equity_before))
        win_rate = (Decimal(book.wins) / Decimal(book.closed)).quantize(Decimal("0.0001"))
        return [
            self._row(
                "trader_positions",
                position,
                trader_id=book.config_id,
                entry_order_id=event.entry_cloid,
                exit_order_id=event.exit_cloid,
                symbol=event.coin,
                side=event.side,
                size=event.size,
                leverage=event.leverage,
                entry_price=event.entry_price,
                exit_price=event.exit_price,
                gross_pnl=event.gross_pnl,
                fees=event.entry_fees + event.exit_fees,
                funding=event.funding,
                pnl=event.net_pnl,
                close_reason=event.reason,
                opened_at=event.opened_at,
                closed_at=event.closed_at,
            ),
            self._row(
                "trader_performance",
                position,
                trader_id=book.config_id,
                event_id=position,
                timestamp=event.closed_at,
                equity=book.allocation + book.realised,
                pnl=book.realised,
                sharpe_ratio=Decimal(str(sharpe_ratio(book.returns))),
                win_rate=win_rate,
                closed_positions=book.closed,
            ),
        ]


def as_text(value: datetime) -> str:
    """Timestamps in SQLite: ISO 8601 UTC with a ``Z`` (sorts as time)."""
    return value.isoformat().replace("+00:00", "Z")


__all__ = [
    "NAME",
    "TABLES",
    "TABLE_BY_NAME",
    "Row",
    "SqlTablesProjector",
    "SqlTablesState",
    "Table",
    "decode_state",
    "encode_state",
]
