"""The data directory's database: migrations, values that survive a reopen, a damaged file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance import store as store_module
from appliance.store import DB_NAME, Store, StoreError


def test_values_survive_reopening(tmp_path: Path) -> None:
    s = Store(tmp_path / "data")
    s.put("muted", True)
    s.put("volume", 55)
    s.close()
    again = Store(tmp_path / "data")
    assert again.get("muted") is True and again.get("volume") == 55
    assert again.get("missing", "default") == "default"
    assert again.schema_version == len(store_module.MIGRATIONS)


def test_a_new_migration_runs_once_on_an_old_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(tmp_path).close()
    monkeypatch.setattr(store_module, "MIGRATIONS",
                        [*store_module.MIGRATIONS, ("CREATE TABLE things (id INTEGER PRIMARY KEY)",)])
    s = Store(tmp_path)
    assert s.schema_version == len(store_module.MIGRATIONS)
    s.execute("INSERT INTO things DEFAULT VALUES")
    s.close()
    assert Store(tmp_path).execute("SELECT count(*) FROM things")[0][0] == 1  # not re-created


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    s = Store(tmp_path)
    with pytest.raises(RuntimeError), s.transaction() as db:
        db.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
        raise RuntimeError("half way")
    assert s.get("a") is None


def test_a_damaged_database_is_moved_aside_and_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.ERROR, logger="appliance.store"):
        s = Store(tmp_path)
    s.put("muted", False)
    assert s.get("muted") is False
    kept = list(tmp_path.glob(f"{DB_NAME}.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not")
    assert "damaged" in caplog.text


def test_an_unusable_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="data directory .*file/data cannot be created"):
        Store(blocker / "data")
