"""The data directory and its SQLite database: the one place that owns the schema and its migrations.

Everything the appliance keeps across restarts (mute, volume, and the agent layer's memory and
timers) lives in `<data dir>/appliance.db`, and nothing is stored anywhere else. Each feature
adds its tables as a new entry at the end of `MIGRATIONS`; a database is brought up to date on open.

Calls are short and run on the event-loop thread (a lock guards the rare call from another thread).
A write the database refuses (read-only or full data directory, a database locked by another
process) raises `StoreFault`, whose `reason` says which in words a person reads; `KeptValues` holds
small values whose write failed and writes them when the store takes writes again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("appliance.store")

DB_NAME = "appliance.db"
# A write waits this long for another process's lock: short, because calls run on the event loop
# (audio and the page wait while it waits); a write that still fails is retried later by its owner.
BUSY_TIMEOUT_S = 0.5
PUT_SQL = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"

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
    # 4: the household's wake-word profiles (triggers/profiles.py): a personal verifier and the speech
    # embeddings it was trained from (npz blobs; audio only with wake.keep_enrolment_audio), and what the
    # detector learned from its mistakes (one embedding window each, bounded by its owner).
    (
        "CREATE TABLE wake_profiles (name TEXT PRIMARY KEY, model TEXT NOT NULL, takes INTEGER NOT NULL,"
        " verifier BLOB NOT NULL, embeddings BLOB NOT NULL, audio BLOB, created_at REAL NOT NULL)",
        "CREATE TABLE wake_learned (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, profile TEXT,"
        " model TEXT NOT NULL, window BLOB NOT NULL, created_at REAL NOT NULL)",
    ),
]


class StoreError(RuntimeError):
    """The data directory or its database cannot be used; the message says which path and why."""


class StoreFault(StoreError):
    """A statement the database refused while running (read-only, full, locked, I/O error)."""

    def __init__(self, path: Path, error: sqlite3.Error) -> None:
        self.reason = fault_reason(error)
        super().__init__(f"database {path}: {self.reason} ({error})")


def fault_reason(error: sqlite3.Error) -> str:
    """What went wrong, for the log, the API and the model (no path, no SQL)."""
    text = str(error).lower()
    if "readonly" in text or "read-only" in text:
        return "the data directory is read-only"
    if "full" in text:
        return "the data directory is full"
    if "locked" in text or "busy" in text:
        return "the database is locked by another process"
    if "i/o" in text:
        return "the data directory cannot be written (I/O error)"
    return "the database refused the write"


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"data directory {data_dir} cannot be created: {exc.strerror}") from None
        self._lock = threading.RLock()
        self.read_only = False  # opened from a read-only data directory: reads work, writes raise StoreFault
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            self._migrate(db)
            return db
        except sqlite3.OperationalError as exc:
            # Read-only, full, locked: the file is fine, the directory is not. Never move it aside
            # (that would throw away mute, volume, timers and memory over a full disk).
            if self.path.exists() and not os.access(self.data_dir, os.W_OK):
                return self._open_read_only()
            raise StoreError(f"database {self.path} cannot be opened: {exc}") from None
        except sqlite3.DatabaseError as exc:
            if not self.path.exists():
                raise StoreError(f"database {self.path} cannot be opened: {exc}") from None
            # A damaged file (power cut on an SD card): keep it for inspection, start a fresh one.
            aside = self.path.with_name(f"{DB_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                self.path.rename(aside)
            except OSError as err:  # a damaged file on a read-only card: say so instead of a traceback
                raise StoreError(f"database {self.path} is damaged ({exc}) and cannot be moved aside: "
                                 f"{err.strerror}") from None
            log.error("database %s is damaged (%s); moved aside to %s and started afresh", self.path, exc, aside,
                      extra={"event": "store_damaged", "path": str(aside)})
            db = self._connect()
            self._migrate(db)
            return db

    def _open_read_only(self) -> sqlite3.Connection:
        """A read-only SD card at start: run on what it holds; `_writable_again` catches up later."""
        uri = f"file:{urllib.parse.quote(str(self.path))}?immutable=1"  # no -shm can be made, none is needed
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version != len(MIGRATIONS):
            db.close()
            raise StoreError(f"database {self.path} is read-only and its schema ({version}) needs migrating")
        self.read_only = True
        log.warning("data directory %s is read-only: running on what it holds; changes are kept in memory "
                    "until it is writable", self.data_dir, extra={"event": "store_read_only"})
        return db

    def _writable_again(self) -> None:
        """Switch a read-only store to a normal one once its directory takes writes (checked per write)."""
        if not self.read_only or not os.access(self.data_dir, os.W_OK):
            return
        try:
            db = self._connect()
            self._migrate(db)
        except (StoreError, sqlite3.Error):
            return
        self._db.close()
        self._db, self.read_only = db, False
        log.info("data directory %s is writable again", self.data_dir, extra={"event": "store_writable"})

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                 timeout=BUSY_TIMEOUT_S)
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
        """Several statements that must land together (all or none, also when COMMIT fails)."""
        with self._lock:
            self._writable_again()
            try:
                self._db.execute("BEGIN")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreFault(self.path, exc) from None
                raise

    def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk does); a transaction left open would
        # make every later BEGIN fail, so the store could never catch up.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self.read_only and not sql.lstrip().upper().startswith("SELECT"):
                self._writable_again()
            try:
                cursor = self._db.execute(sql, params)
                return list(cursor.fetchall())
            except sqlite3.OperationalError as exc:
                self._rollback()
                raise StoreFault(self.path, exc) from None

    def data_version(self) -> int:
        """A number that changes when another connection (another process: the CLI) commits to the
        database; this connection's own commits leave it as it is (SQLite's `PRAGMA data_version`)."""
        with self._lock:
            try:
                return int(self._db.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise StoreFault(self.path, exc) from None

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
        self.execute(PUT_SQL, (key, json.dumps(value)))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class KeptValues:
    """Small named values written through to the store. One whose write fails is kept here (it is
    still the value in effect) and written by `flush`, which the owner calls again later.

    `on_fault` hears the first failure of a run of failures (not each retry: no log flood);
    `on_saved` hears the keys that reached the store after a failure.
    """

    def __init__(
        self,
        store: Store,
        on_fault: Callable[[list[str], StoreFault], None],
        on_saved: Callable[[list[str]], None],
    ) -> None:
        self._store = store
        self._pending: dict[str, Any] = {}
        self._on_fault = on_fault
        self._on_saved = on_saved
        self._failing = False

    @property
    def unsaved(self) -> list[str]:
        """Keys whose value in effect is not in the store yet."""
        return list(self._pending)

    def put(self, key: str, value: Any) -> bool:
        """Keep `value` and try to write it (and any earlier unsaved ones). True when all are saved."""
        self._pending[key] = value
        return self.flush()

    def flush(self) -> bool:
        if not self._pending:
            return True
        keys = list(self._pending)
        try:
            with self._store.transaction() as db:
                for key in keys:
                    db.execute(PUT_SQL, (key, json.dumps(self._pending[key])))
        except StoreFault as fault:
            if not self._failing:
                self._failing = True
                self._on_fault(keys, fault)
            return False
        for key in keys:
            del self._pending[key]
        if self._failing:
            self._failing = False
            self._on_saved(keys)
        return True
