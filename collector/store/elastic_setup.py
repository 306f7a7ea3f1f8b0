"""Index templates, ILM policy and write target of the Elasticsearch store.

Layout (names for ``index_prefix = "soc-events"``, ``namespace = "default"``):

- ILM policy ``soc-events``: roll over daily or at 50 GB per primary shard, delete ``retention_days``
  after rollover (so an event lives between ``retention_days`` and ``retention_days + 1`` days).
- Component templates ``soc-events-settings`` (lowercase normalizer, ``ignore_malformed`` so one
  odd value never costs the whole event, the ILM policy) and ``soc-events-mappings`` (the ECS
  mapping, see :mod:`collector.store.elastic_mapping`).
- Index template ``soc-events`` for ``soc-events-*`` that makes ``soc-events-default`` a data
  stream (append-only, ``op_type=create`` only: exactly the idempotent write the store wants).

Everything is PUT with the same body every time, so :func:`ensure_setup` is idempotent and safe to
run at every start (it also upgrades mappings in place for new backing indices).

Servers without ILM or data streams (OpenSearch and ES-API test servers) get the same templates
without the lifecycle setting and a plain index ``soc-events-default``; retention then runs as a
periodic ``delete_by_query`` (see ``ElasticEventStore.apply_retention``).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from elasticsearch import ApiError, Elasticsearch

from collector.store.settings import StoreSettings

log = logging.getLogger(__name__)

Mode = Literal["data_stream", "index"]


@dataclass(frozen=True)
class Layout:
    """The names the store reads and writes."""

    prefix: str
    namespace: str

    @property
    def target(self) -> str:
        return f"{self.prefix}-{self.namespace}"

    @property
    def policy(self) -> str:
        return self.prefix

    @property
    def template(self) -> str:
        return self.prefix

    @property
    def settings_component(self) -> str:
        return f"{self.prefix}-settings"

    @property
    def mappings_component(self) -> str:
        return f"{self.prefix}-mappings"


def load_template(name: str) -> dict[str, Any]:
    """A JSON file from ``collector/store/templates`` (a fresh copy each call)."""
    text = resources.files("collector.store").joinpath("templates", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return copy.deepcopy(data)


def ilm_policy(settings: StoreSettings) -> dict[str, Any]:
    policy = load_template("ilm-policy.json")["policy"]
    policy["phases"]["hot"]["actions"]["rollover"] = {
        "max_age": settings.rollover_max_age,
        "max_primary_shard_size": settings.rollover_max_primary_size,
    }
    policy["phases"]["delete"]["min_age"] = f"{settings.retention_days}d"
    return dict(policy)


def settings_component(settings: StoreSettings, layout: Layout, with_ilm: bool) -> dict[str, Any]:
    body = load_template("settings.json")
    index = body["template"]["settings"]["index"]
    index["number_of_shards"] = settings.shards
    index["number_of_replicas"] = settings.replicas
    if with_ilm:
        index["lifecycle"] = {"name": layout.policy}
    return body


def index_template(layout: Layout, data_stream: bool) -> dict[str, Any]:
    body = load_template("index-template.json")
    body["index_patterns"] = [f"{layout.prefix}-*"]
    body["composed_of"] = [layout.settings_component, layout.mappings_component]
    if not data_stream:
        body.pop("data_stream", None)
    return body


def is_unsupported(exc: ApiError) -> bool:
    """True when the server lacks an API or feature (as opposed to refusing a valid request)."""
    status = exc.meta.status
    text = f"{exc.message} {exc.body}".lower()
    if status in (404, 405, 501):
        return "no handler" in text or "not supported" in text or status != 404
    markers = ("no handler", "not supported", "unknown setting", "unsupported")
    return status == 400 and any(marker in text for marker in markers)


def _put_policy(client: Elasticsearch, settings: StoreSettings, layout: Layout) -> bool:
    try:
        client.ilm.put_lifecycle(name=layout.policy, policy=ilm_policy(settings))
    except ApiError as exc:
        if is_unsupported(exc):
            log.warning("server has no ILM; retention runs as delete_by_query (%s)", exc.message)
            return False
        raise
    return True


def _data_stream_exists(client: Elasticsearch, layout: Layout) -> bool:
    try:
        found = client.indices.get_data_stream(name=layout.target)
    except ApiError as exc:
        if exc.meta.status == 404 or is_unsupported(exc):
            return False
        raise
    return any(ds.get("name") == layout.target for ds in found.get("data_streams", []))


def _put_templates(client: Elasticsearch, settings: StoreSettings, layout: Layout, ilm: bool, ds: bool) -> None:
    client.cluster.put_component_template(
        name=layout.settings_component, template=settings_component(settings, layout, ilm)["template"]
    )
    client.cluster.put_component_template(
        name=layout.mappings_component, template=load_template("mappings.json")["template"]
    )
    template = index_template(layout, ds)
    client.indices.put_index_template(
        name=layout.template,
        index_patterns=template["index_patterns"],
        composed_of=template["composed_of"],
        priority=template["priority"],
        data_stream=template.get("data_stream"),
        template=template.get("template"),
        meta={"managed_by": "soc-platform collector"},
    )


def ensure_setup(client: Elasticsearch, settings: StoreSettings, layout: Layout) -> tuple[Mode, bool]:
    """Create or update policy, templates and the write target; return (mode, ILM in use)."""
    ilm = _put_policy(client, settings, layout)
    if _data_stream_exists(client, layout):
        _put_templates(client, settings, layout, ilm, ds=True)
        return "data_stream", ilm
    if client.indices.exists(index=layout.target):
        # A plain index cannot roll over without an alias, so it gets no lifecycle.
        _put_templates(client, settings, layout, False, ds=False)
        return "index", False
    _put_templates(client, settings, layout, ilm, ds=True)
    try:
        client.indices.create_data_stream(name=layout.target)
        return "data_stream", ilm
    except ApiError as exc:
        if exc.meta.status == 400 and "already_exists" in str(exc.body):
            return "data_stream", ilm
        if not is_unsupported(exc):
            raise
        log.warning("server has no data streams; using plain index %s (%s)", layout.target, exc.message)
    _put_templates(client, settings, layout, False, ds=False)
    try:
        client.indices.create(index=layout.target)
    except ApiError as exc:
        if "already_exists" not in str(exc.body):
            raise
    return "index", False
