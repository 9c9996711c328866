"""The data directory and its SQLite database: the one place that owns the schema and its migrations.

Everything the appliance keeps across restarts (mute, volume, and the agent layer's memory and
timers) lives in `<data dir>/appliance.db`, and nothing is stored anywhere else. Each feature
adds its tables as a new entry at the end of `MIGRATIONS`; a database is brought up to date on open.

Calls are short and run on the event-loop thread (a lock guards the rare call from another thread).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("appliance.store")

DB_NAME = "appliance.db"

# Append only: a migration that has run on a device is never edited.
MIGRATIONS: list[Sequence[str]] = [
    # 1: small named values (mute, volume), as JSON.
    ("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",),
    # 2: household facts the agent remembers (conversation/tools/memory.py).
    ("CREATE TABLE memory (id INTEGER PRIMARY KEY AUTOINCREMENT, fact TEXT NOT NULL, created_at REAL NOT NULL)",),
    # 3: kitchen timers (conversation/tools/timers.py); `due_at` is wall-clock time, so they survive restarts.
    (
        "CREATE TABLE timers (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL,"
        " seconds REAL NOT NULL, due_at REAL NOT NULL, created_at REAL NOT NULL)",
    ),
]


class StoreError(RuntimeError):
    """The data directory or its database cannot be used; the message says which path and why."""


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"data directory {data_dir} cannot be created: {exc.strerror}") from None
        self._lock = threading.RLock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            self._migrate(db)
            return db
        except sqlite3.DatabaseError as exc:
            if not self.path.exists() or isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreError(f"database {self.path} cannot be opened: {exc}") from None
            # A damaged file (power cut on an SD card): keep it for inspection, start a fresh one.
            aside = self.path.with_name(f"{DB_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.rename(aside)
            log.error("database %s is damaged (%s); moved aside to %s and started afresh", self.path, exc, aside,
                      extra={"event": "store_damaged", "path": str(aside)})
            db = self._connect()
            self._migrate(db)
            return db

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"database {self.path} cannot be opened: {exc}") from None
        db.execute("PRAGMA journal_mode=WAL")  # a power cut loses at most the last write
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(f"database schema {version} is newer than this appliance knows ({len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            db.execute("BEGIN")
            try:
                for statement in MIGRATIONS[number]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Several statements that must land together."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return list(cursor.fetchall())

    # -- small named values ---------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        rows = self.execute("SELECT value FROM kv WHERE key = ?", (key,))
        if not rows:
            return default
        try:
            return json.loads(rows[0][0])
        except ValueError:
            return default

    def put(self, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
