"""Fixtures shared by the whole suite.

The PostgreSQL server is session-wide and defined here once, so a full run starts one server for
every suite that uses the database (each suite's ``db_url`` creates its own database in it).
"""

from __future__ import annotations

from tests.helpers.db_fixtures import postgres_server

__all__ = ["postgres_server"]
