"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from soc_api.db.base import Base
from soc_api.db.migrate import alembic_config, current_revision, upgrade
from soc_api.db.registry import load_all_models
from soc_api.db.session import make_engine


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_upgrade_on_empty_database_matches_models(db_url: str) -> None:
    load_all_models()
    upgrade(db_url)
    assert current_revision(db_url) == _head()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"alerts", "alert_techniques", "users", "api_keys", "audit_log", "suppressions"} <= tables


def test_upgrade_is_repeatable(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # a second run at head is a no-op, not an error
    assert current_revision(db_url) == _head()


def test_audit_log_refuses_update_in_database(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, ts, actor, action, object_type, prev_hash, hash) "
                    "VALUES (1, CURRENT_TIMESTAMP, 'a', 'x', 'y', 'p', 'h')"
                )
            )
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'b' WHERE seq = 1"))
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
