"""``soc collector ...`` for the soak's Elasticsearch variant on osmem-server (test only).

osmem-server is an in-memory ES-API server, not Elasticsearch: the official client needs the
test-only :class:`PlainJsonNode` to talk to it (see tests/store/osmem_node.py). This launcher makes
that the default node class, then runs the real collector command line unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import elasticsearch
from store.osmem_node import PlainJsonNode

_Original = elasticsearch.Elasticsearch


class _OsmemElasticsearch(_Original):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("node_class", PlainJsonNode)
        super().__init__(*args, **kwargs)


elasticsearch.Elasticsearch = _OsmemElasticsearch  # type: ignore[misc]

from collector.cli import app  # noqa: E402

if __name__ == "__main__":
    app()
