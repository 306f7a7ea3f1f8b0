"""The app under contract test: SQLite, seeded like the incident tests, bearer token of an admin, and a
real collector behind the agents endpoints (its admin API over TLS with an admin key)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from collector.ingest.admin import AdminCredentials, credentials_path  # noqa: E402
from soc_api.agents.settings import AgentsSettings  # noqa: E402
from soc_api.app import create_app  # noqa: E402
from tests.collector.ingest_harness import start_stack  # noqa: E402
from tests.incidents.world import incident_config, seed  # noqa: E402


@pytest.fixture(scope="module")
def contract_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("contract")
    collector = start_stack(tmp / "collector")
    key = AdminCredentials(credentials_path(collector.config.state_dir)).create_key("contract")
    agents = AgentsSettings(collector_url=collector.url, ca_file=collector.ca_file, admin_key=key)
    config = incident_config(f"sqlite:///{tmp / 'soc.db'}", tmp).model_copy(update={"agents": agents})
    app = create_app(config)
    world = seed(app.state.soc)
    token, _ = app.state.soc.signer.issue(world.user_ids["admin"], "access", timedelta(hours=2))
    app.state.contract_token = token
    yield app
    app.state.soc.engine.dispose()
    collector.server.stop()
    collector.store.close()


@pytest.fixture(scope="module")
def api_schema(contract_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", contract_app)
