"""Elasticsearch-only behaviour: idempotent setup, fallback layout, unreachable cluster."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from pydantic import SecretStr

from collector.store.base import Query, StoreError
from collector.store.elastic import ElasticEventStore
from collector.store.elastic_mapping import caseless_field
from collector.store.settings import StoreSettings
from tests.store.conftest import osmem_client
from tests.store.samples import make_event

pytestmark = pytest.mark.es


@pytest.fixture
def es_client(osmem: Any) -> Iterator[Elasticsearch]:
    clone = osmem.clone()
    client = osmem_client(clone.url)
    yield client
    client.close()
    clone.close()


def test_setup_is_idempotent_and_falls_back_without_data_streams(es_client: Elasticsearch) -> None:
    settings = StoreSettings(kind="elasticsearch", replicas=0)
    store = ElasticEventStore(settings, client=es_client)
    assert store.write([make_event(1)]).stored == 1
    store.ensure_setup()
    again = ElasticEventStore(settings, client=es_client)
    assert (again.mode, again.ilm) == (store.mode, store.ilm) == ("index", False)  # osmem: no DS/ILM
    again.refresh()
    assert again.count(Query()) == 1
    mapping = es_client.indices.get_mapping(index=store.layout.target).body
    props = mapping[store.layout.target]["mappings"]["properties"]
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["source"]["properties"]["port"]["type"] == "long"
    assert props["message"]["type"] == "match_only_text"


def test_caseless_subfield_matches_any_case(es_client: Elasticsearch) -> None:
    store = ElasticEventStore(StoreSettings(kind="elasticsearch", replicas=0), client=es_client)
    store.write([make_event(1, fields={"process.command_line": "C:\\Windows\\System32\\WhoAmI.exe /all"})])
    store.refresh()
    field = caseless_field("process.command_line")
    assert field == "process.command_line.caseless"
    hits = es_client.search(index=store.layout.target, query={"query_string": {"query": f"{field}:*whoami.EXE*"}}).body[
        "hits"
    ]["hits"]
    assert [h["_id"] for h in hits] == ["evt-00001"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_cluster_raises_store_error() -> None:
    settings = StoreSettings(
        kind="elasticsearch",
        hosts=[f"http://127.0.0.1:{_closed_port()}"],
        retries=1,
        retry_backoff_seconds=0.01,
        request_timeout_seconds=2,
    )
    with pytest.raises(StoreError):
        ElasticEventStore(settings)
    store = ElasticEventStore(settings, setup=False)
    with pytest.raises(StoreError):
        store.write([make_event(1)])
    assert store.health()["reachable"] is False
    store.close()


def test_secrets_never_appear_in_settings_repr() -> None:
    settings = StoreSettings(
        kind="elasticsearch",
        username="soc",
        password=SecretStr("hunter2-secret"),
        api_key=SecretStr("k3y-secret"),
    )
    text = repr(settings) + str(settings.model_dump())
    assert "hunter2-secret" not in text and "k3y-secret" not in text
