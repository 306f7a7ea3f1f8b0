"""Signed webhook delivery: HTTPS POST of a JSON body.

The receiver checks ``X-SOC-Signature: sha256=<hex>`` = HMAC-SHA256(secret, ``<timestamp>.<body>``)
and that ``X-SOC-Timestamp`` is recent, which proves the sender and stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from typing import Any

import httpx

from soc_api.notifications.settings import WebhookSettings

SIGNATURE_HEADER = "X-SOC-Signature"
TIMESTAMP_HEADER = "X-SOC-Timestamp"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, *, max_age: float = 300) -> bool:
    """For receivers (and tests): signature matches and the timestamp is within ``max_age`` seconds."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def post_webhook(hook: WebhookSettings, kind: str, payload: dict[str, Any]) -> None:
    """Deliver or raise; any non-2xx answer is a failure (redirects are not followed)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "soc-api-notifier/1",
        "X-SOC-Event": kind,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(hook.secret.get_secret_value().encode(), ts, body),
    }
    ctx = ssl.create_default_context(cafile=str(hook.ca_file) if hook.ca_file else None)
    response = httpx.post(
        hook.url, content=body, headers=headers, timeout=hook.timeout_seconds, verify=ctx, follow_redirects=False
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook {hook.name} answered HTTP {response.status_code}")
