"""HTTPS client of the collector's admin API (docs/collector-admin.md), with the collector CA pinned.

Failures are split in two: :class:`CollectorUnavailable` (not configured, unreachable, TLS failure,
credential refused, server error) which the API answers with 503, and :class:`CollectorRefused`
for a request the collector judged (404 unknown agent, 409 already revoked, 422 invalid policy).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httpx

from soc_api.agents.settings import AgentsSettings

log = logging.getLogger(__name__)


class CollectorUnavailable(Exception):
    """The collector's admin API cannot be used right now (the message says why, without secrets)."""


class CollectorRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CollectorAdminClient:
    def __init__(self, settings: AgentsSettings) -> None:
        self.settings = settings

    def _context(self) -> ssl.SSLContext:
        s = self.settings
        if s.ca_file is None:
            raise CollectorUnavailable("agents.ca_file is not set: the collector CA must be pinned")
        try:
            ctx = ssl.create_default_context(cafile=str(s.ca_file))
            if s.admin_cert is not None and s.admin_cert_key is not None:
                ctx.load_cert_chain(str(s.admin_cert), str(s.admin_cert_key))
        except (OSError, ssl.SSLError) as exc:
            raise CollectorUnavailable(f"cannot load the collector CA or admin certificate: {exc}") from None
        return ctx

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One admin call; ``path`` is below ``/v1/admin/``."""
        s = self.settings
        if not s.configured:
            raise CollectorUnavailable("the collector admin API is not configured ([agents] collector_url, admin key)")
        headers = {"Accept": "application/json"}
        if s.admin_key is not None and s.admin_cert is None:
            headers["Authorization"] = f"Bearer {s.admin_key.get_secret_value()}"
        url = f"{s.collector_url.rstrip('/')}/v1/admin/{path}"
        try:
            with httpx.Client(verify=self._context(), timeout=s.timeout, trust_env=False) as client:
                response = client.request(method, url, json=body if method == "POST" else None, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("collector admin API %s unreachable: %s", s.collector_url, type(exc).__name__)
            raise CollectorUnavailable(f"the collector at {s.collector_url} cannot be reached") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        message = str(payload.get("error", "")) if isinstance(payload, dict) else ""
        if response.status_code in (401, 403):
            raise CollectorUnavailable(
                f"the collector refused the admin credential ({message or response.status_code})"
            )
        if response.status_code >= 500:
            raise CollectorUnavailable(f"the collector failed ({response.status_code}): {message}")
        if response.status_code >= 400:
            raise CollectorRefused(response.status_code, message or "refused by the collector")
        return payload

    # -- calls ---------------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "agents").get("agents", []))

    def agent(self, agent_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"agents/{agent_id}"))

    def revoke_agent(self, agent_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"agents/{agent_id}/revoke", {}))

    def tokens(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "tokens").get("tokens", []))

    def create_token(self, *, site: str | None, uses: int, ttl_seconds: float, note: str | None) -> dict[str, Any]:
        body = {"site": site, "uses": uses, "ttl_seconds": ttl_seconds, "note": note}
        return dict(self.call("POST", "tokens", body))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"tokens/{token_id}/revoke", {}))

    def policy(self, layer: str) -> dict[str, Any]:
        return dict(self.call("GET", f"policies/{layer}"))

    def set_policy(self, layer: str, policy: dict[str, Any] | None) -> dict[str, Any]:
        return dict(self.call("POST", f"policies/{layer}", {"policy": policy}))
