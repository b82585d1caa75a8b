"""Durable simulator state: a small core file replaced atomically, plus one append-only history.

A commit appends the new history records (fills, funding, finished orders) to
``history.jsonl`` and fsyncs it, then writes ``core.json`` (temp file, fsync, ``os.replace``).
The core names the last history sequence number it includes, so on load any history line
beyond it (written just before a crash) or torn (half-written) is cut off: the venue restarts
exactly at the last completed call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import msgspec

from infrastructure.files import atomic_write, fsync_dir
from infrastructure.simulator.state import Core, Record

CORE = "core.json"
HISTORY = "history.jsonl"

_core_decoder = msgspec.json.Decoder(Core)
_record_decoder = msgspec.json.Decoder(Record)
_encoder = msgspec.json.Encoder(decimal_format="string")


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._core = directory / CORE
        self._history = directory / HISTORY

    def load(self) -> tuple[Core, list[Record]] | None:
        """The saved core and its history (tail past the core cut off); None if nothing saved."""
        if not self._core.exists():
            self._history.unlink(missing_ok=True)  # appended before the first core: never committed
            return None
        core = _core_decoder.decode(self._core.read_bytes())
        return core, self._read_history(core.seq)

    def _read_history(self, last_seq: int) -> list[Record]:
        if not self._history.exists():
            return []
        records: list[Record] = []
        good_end = 0
        with self._history.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # torn tail
                try:
                    record = _record_decoder.decode(line)
                except msgspec.DecodeError:
                    break
                if record.seq > last_seq:
                    break  # written, but the core that would include it never was
                records.append(record)
                good_end += len(line)
        if good_end != self._history.stat().st_size:
            with self._history.open("r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())
        return records

    def commit(self, core: Core, records: Iterable[Record]) -> None:
        lines = b"".join(_encoder.encode(record) + b"\n" for record in records)
        if lines:
            with self._history.open("ab") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        self._replace(self._core, _encoder.encode(core))

    def rewrite_history(self, records: Iterable[Record]) -> None:
        """Replace the history with ``records`` (compaction of what memory no longer keeps)."""
        self._replace(
            self._history, b"".join(_encoder.encode(record) + b"\n" for record in records)
        )

    def _replace(self, path: Path, data: bytes) -> None:
        atomic_write(path, data)
        fsync_dir(self.directory)  # make the rename itself durable
