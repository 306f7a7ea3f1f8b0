"""Fixtures: a real app on SQLite and PostgreSQL with sites, users of every role, and alerts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from soc_api.app import create_app
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_api.state import AppState

# The repository root, so ``tests.helpers`` imports; it holds only the real packages, so nothing
# is shadowed (putting tests/ itself on sys.path would shadow them with tests/<name>/ folders).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.alerts import make_alert  # noqa: E402
from tests.helpers.api_world import PASSWORD, Api, make_config, seed_people  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402

__all__ = ["PASSWORD", "api", "db_url"]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    app = create_app(make_config(db_url, tmp_path))
    state: AppState = app.state.soc
    out = Api(client=TestClient(app, base_url="https://testserver"), state=state)
    seed_people(out, sub_site=True)
    sink = DatabaseAlertSink(state.sessions)
    hn = make_alert(1, site="hn-q1", host_name="pc-hn")
    hcm = make_alert(2, site="hcm", host_name="pc-hcm", techniques=["T1059.001"], severity="critical")
    sink.emit([hn, hcm])
    out.alert_ids = {"hn": hn.id, "hcm": hcm.id}
    with out.client:
        yield out
