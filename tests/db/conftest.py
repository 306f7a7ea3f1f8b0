"""Fixtures: ``db_url`` over SQLite and a real PostgreSQL server; a migrated session factory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.migrate import upgrade
from soc_api.db.session import make_engine, make_session_factory

# The repository root, so ``tests.helpers`` imports; it holds only the real packages, so nothing
# is shadowed (putting tests/ itself on sys.path would shadow them with tests/<name>/ folders).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.db_fixtures import db_url  # noqa: E402

__all__ = ["db_url", "session_factory"]


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
