"""Fixtures: the incident test world (see world.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc_api.app import create_app

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.api_world import Api  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402
from tests.incidents.world import incident_config, seed  # noqa: E402

__all__ = ["db_url"]


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[Api]:
    app = create_app(incident_config(db_url, tmp_path))
    out = seed(app.state.soc)
    out.client = TestClient(app, base_url="https://testserver")
    with out.client:
        yield out
