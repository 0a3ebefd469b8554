"""A recording's row by its id, read from a SQLite catalog in the calling thread.

The media endpoints read the recording's row on every request (its access rules can change in another process at any
time). Through the async engine that read is six hand-offs to aiosqlite's thread and SQLAlchemy's ORM load: about
0.6 ms of a 64 KiB range request's 3 ms here. A primary-key lookup in a WAL database is a few microseconds and never
waits for a writer, so it is done with the standard library's `sqlite3` in the event loop's own thread, and turned
into the same detached `RecordingRow` the ORM would give (SQLAlchemy's own result processors for each column's type).
Anything unexpected from SQLite (a busy database during recovery, a schema being migrated) falls back to the engine.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict

from callrec.storage.rows import RecordingRow

BUSY_TIMEOUT_MS = 200  # a reader in WAL mode waits only while the database recovers; then the engine's path is used


class RecordingReader:
    """One `sqlite3` connection per thread to the catalog file at `path`, read-only by pragma."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path = path
        table = cast(Table, RecordingRow.__table__)
        self.columns = [column.key for column in table.columns]
        configure_mappers()  # a process's first ORM use may be this read: its attributes must be set up first
        self.manager = inspect(RecordingRow).class_manager
        self.sql = (
            f"SELECT {', '.join(column.name for column in table.columns)} FROM {table.name} WHERE recording_id = ?"
        )
        self.processors: list[Callable[[Any], Any] | None] = [
            column.type.result_processor(dialect, None) for column in table.columns
        ]
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def get(self, recording_id: str) -> RecordingRow | None:
        """The row, or None when there is none; raises `sqlite3.Error` when SQLite could not answer at once."""
        values = self._connection().execute(self.sql, (recording_id,)).fetchone()
        if values is None:
            return None
        fields = {
            key: value if process is None or value is None else process(value)
            for key, value, process in zip(self.columns, values, self.processors, strict=True)
        }
        row = self.manager.new_instance()  # filled in as the ORM's loading does: not through the constructor, which
        instance_dict(row).update(fields)  # records each column as a change (a fifth of this read's time)
        make_transient_to_detached(row)  # as a row loaded by a session that has closed
        return row

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
