"""Fixtures for the store contract suite: one ``store`` fixture over every implementation.

``es-osmem`` runs against osmem-server (an in-memory ES-API server bundled as a PyPI wheel); a
fresh clone of the cluster per test keeps tests independent. ``es-real`` runs when
``SOC_TEST_ES_URL`` points at a real Elasticsearch (each test gets its own index prefix).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from collector.store.base import EventStore
from collector.store.elastic import ElasticEventStore
from collector.store.settings import StoreSettings
from collector.store.sqlite import SqliteEventStore
from tests.store.osmem_node import PlainJsonNode


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    try:
        from osmem_server import OsmemServer
    except ImportError:
        pytest.skip("osmem-server is not installed (pip install osmem-server)")
    server = OsmemServer.start(japanese=False)
    yield server
    server.close()


def osmem_client(url: str) -> Elasticsearch:
    return Elasticsearch(hosts=[url], node_class=PlainJsonNode, request_timeout=30, max_retries=0)


def _es_settings(prefix: str = "soc-events") -> StoreSettings:
    return StoreSettings(kind="elasticsearch", index_prefix=prefix, retries=2, retry_backoff_seconds=0.05, replicas=0)


@pytest.fixture(
    params=["sqlite", pytest.param("es-osmem", marks=pytest.mark.es), pytest.param("es-real", marks=pytest.mark.es)]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    kind = request.param
    if kind == "sqlite":
        sqlite_store = SqliteEventStore(tmp_path / "events.db")
        yield sqlite_store
        sqlite_store.close()
        return
    if kind == "es-osmem":
        server = request.getfixturevalue("osmem")
        clone = server.clone()
        client = osmem_client(clone.url)
        es_store = ElasticEventStore(_es_settings(), client=client)
        yield es_store
        client.close()
        clone.close()
        return
    url = os.environ.get("SOC_TEST_ES_URL")
    if not url:
        pytest.skip("SOC_TEST_ES_URL is not set (point it at a real Elasticsearch to run es-real)")
    prefix = f"soc-test-{uuid.uuid4().hex[:10]}"
    client = Elasticsearch(hosts=[url], verify_certs=os.environ.get("SOC_TEST_ES_VERIFY", "1") != "0")
    es_store = ElasticEventStore(_es_settings(prefix), client=client)
    yield es_store
    layout = es_store.layout
    for cleanup in (
        lambda: client.indices.delete_data_stream(name=layout.target),
        lambda: client.indices.delete(index=layout.target),
        lambda: client.indices.delete_index_template(name=layout.template),
        lambda: client.cluster.delete_component_template(name=layout.settings_component),
        lambda: client.cluster.delete_component_template(name=layout.mappings_component),
        lambda: client.ilm.delete_lifecycle(name=layout.policy),
    ):
        with contextlib.suppress(Exception):
            cleanup()
    client.close()
