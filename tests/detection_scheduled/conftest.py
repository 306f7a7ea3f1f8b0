"""Fixtures: an Elasticsearch store on osmem-server (and on a real ES when SOC_TEST_ES_URL is set).

The osmem server and its client adaptation come from the store suite (tests/store), reused as is.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from collector.store.elastic import ElasticEventStore
from tests.store.conftest import _es_settings, osmem, osmem_client  # noqa: F401 - osmem is a fixture

from .helpers import ListSink


@pytest.fixture(params=[pytest.param("es-osmem", marks=pytest.mark.es), pytest.param("es-real", marks=pytest.mark.es)])
def es_store(request: pytest.FixtureRequest) -> Iterator[ElasticEventStore]:
    if request.param == "es-osmem":
        clone = request.getfixturevalue("osmem").clone()
        client = osmem_client(clone.url)
        store = ElasticEventStore(_es_settings(), client=client)
        yield store
        client.close()
        clone.close()
        return
    url = os.environ.get("SOC_TEST_ES_URL")
    if not url:
        pytest.skip("SOC_TEST_ES_URL is not set (point it at a real Elasticsearch to run es-real)")
    client = Elasticsearch(hosts=[url], verify_certs=os.environ.get("SOC_TEST_ES_VERIFY", "1") != "0")
    store = ElasticEventStore(_es_settings(f"soc-test-{uuid.uuid4().hex[:10]}"), client=client)
    yield store
    layout = store.layout
    for cleanup in (
        lambda: client.indices.delete_data_stream(name=layout.target),
        lambda: client.indices.delete(index=layout.target),
        lambda: client.indices.delete_index_template(name=layout.template),
        lambda: client.cluster.delete_component_template(name=layout.settings_component),
        lambda: client.cluster.delete_component_template(name=layout.mappings_component),
    ):
        with contextlib.suppress(Exception):
            cleanup()
    client.close()


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "scheduled.db"
