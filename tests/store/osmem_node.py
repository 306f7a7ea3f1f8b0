"""Test-only client adaptation for osmem-server (also used by bench/bench_store.py)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT

_VENDOR_MIME = re.compile(r"application/vnd\.elasticsearch\+([\w-]+)(\s*;\s*compatible-with=\d+)?")


class PlainJsonNode(Urllib3HttpNode):
    """Test-only adaptation for osmem-server, which is not Elasticsearch.

    The official client sends ``application/vnd.elasticsearch+json; compatible-with=8`` (osmem
    answers 406) and refuses servers that do not send ``X-Elastic-Product: Elasticsearch``. This
    node rewrites the former to plain ``application/json`` and adds the latter; production code
    never uses it.
    """

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: Any = DEFAULT,
    ) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                if name in headers:
                    headers[name] = _VENDOR_MIME.sub(r"application/\1", headers[name])
        response = super().perform_request(method, target, body=body, headers=headers, request_timeout=request_timeout)
        patched = response.meta.headers.copy()
        patched["x-elastic-product"] = "Elasticsearch"
        return NodeApiResponse(dataclasses.replace(response.meta, headers=patched), response.body)
