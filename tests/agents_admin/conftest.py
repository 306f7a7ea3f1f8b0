"""A real collector ingest server (loopback TLS, real registry and SQLite store) with an admin key,
and the real SOC API app configured to manage it through the admin API, sharing the event store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from collector.ingest.admin import AdminCredentials, credentials_path  # noqa: E402
from soc_api.app import create_app  # noqa: E402
from soc_api.config import ApiConfig  # noqa: E402
from soc_api.state import AppState  # noqa: E402
from tests.collector.ingest_harness import Stack, start_stack  # noqa: E402
from tests.helpers.api_world import Api, seed_people  # noqa: E402


@dataclass
class World:
    stack: Stack
    api: Api
    admin_key: str

    @property
    def client(self) -> TestClient:
        return self.api.client

    def as_(self, username: str) -> dict[str, str]:
        return self.api.headers(username)


def api_config(tmp_path: Path, stack: Stack, admin_key: str, **agents: object) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "data_dir": str(tmp_path / "api"),
            "database": {"url": f"sqlite:///{tmp_path / 'soc.db'}"},
            "security": {"session_secret": "a" * 48},
            "store": {"kind": "sqlite", "sqlite_path": str(tmp_path / "events.db"), "retention_days": 3650},
            "agents": {
                "collector_url": stack.url,
                "ca_file": str(stack.ca_file),
                "admin_key": admin_key,
                "timeout": 5,
                **agents,
            },
        }
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path)
    yield s
    s.server.stop()
    s.store.close()


@pytest.fixture
def admin_key(stack: Stack) -> str:
    return AdminCredentials(credentials_path(stack.config.state_dir)).create_key("soc-api-test")


@pytest.fixture
def world(tmp_path: Path, stack: Stack, admin_key: str) -> Iterator[World]:
    app = create_app(api_config(tmp_path, stack, admin_key))
    state: AppState = app.state.soc
    api = Api(client=TestClient(app, base_url="https://testserver"), state=state)
    seed_people(api)
    with api.client:
        yield World(stack, api, admin_key)
