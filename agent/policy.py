"""Central policy: ``GET /v1/policy`` with ETag, cached on disk, merged over the local configuration.

The collector may set the sections that describe *what* to collect and *how* to ship it; where to
ship (``collector_url``) and where state lives (``data_dir``) are local only, so a policy cannot
redirect an agent's data or make it write elsewhere. With ``policy.allow_local_override`` the keys
set in the local file (or environment) win over the central ones; otherwise the centre wins.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import AgentConfig, validate_sources
from agent.plugins import PluginRegistry
from agent.shipper import CollectorClient, CollectorError
from soc_common.config import ConfigError

log = logging.getLogger(__name__)

CENTRAL_SECTIONS = frozenset({"host", "shipping", "spool", "sources", "policy", "status_interval"})


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def effective_config(
    local: AgentConfig, central: dict[str, Any], version: str | None = None, plugins: PluginRegistry | None = None
) -> AgentConfig:
    """The configuration to run: ``local`` with ``central`` applied. Raises ConfigError if unusable."""
    origin = f"central policy {version or '(cached)'}"
    ignored = sorted(set(central) - CENTRAL_SECTIONS)
    if ignored:
        log.warning("%s: ignoring keys an agent policy may not set: %s", origin, ", ".join(ignored))
    allowed = {k: v for k, v in central.items() if k in CENTRAL_SECTIONS}
    if isinstance(allowed.get("policy"), dict):  # only the local file decides who wins
        allowed["policy"] = {k: v for k, v in allowed["policy"].items() if k != "allow_local_override"}
    merged = _merge(local.model_dump(mode="json"), allowed)
    if local.policy.allow_local_override:
        merged = _merge(merged, local.model_dump(mode="json", exclude_unset=True))
    try:
        config = AgentConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{origin}: key '{'.'.join(str(p) for p in first['loc'])}': {first['msg']}") from None
    validate_sources(config, origin, plugins)
    return config


class PolicyClient:
    """Polls the collector for this agent's policy; remembers the last one across restarts."""

    def __init__(self, client: CollectorClient, cache_path: Path) -> None:
        self._client = client
        self.cache_path = cache_path
        self.version: str | None = None
        self.policy: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._load_cache()

    def _load_cache(self) -> None:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return
        if isinstance(data, dict) and isinstance(data.get("policy"), dict):
            self.version = data.get("version")
            self.policy = data["policy"]

    def _save_cache(self) -> None:
        tmp = self.cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.version, "policy": self.policy}), encoding="utf-8")
        os.replace(tmp, self.cache_path)

    def poll(self) -> bool:
        """Fetch the policy; True when it changed. Network errors are recorded, not raised."""
        headers = {"Accept": "application/json"}
        if self.version:
            headers["If-None-Match"] = f'"{self.version}"'
        try:
            resp = self._client.request("GET", "/v1/policy", headers=headers)
        except CollectorError as exc:
            self.last_error = str(exc)
            return False
        if resp.status == 304:
            self.last_error = None
            return False
        if resp.status != 200:
            self.last_error = f"HTTP {resp.status}"
            return False
        try:
            data = json.loads(resp.body)
            version, policy = data.get("version"), data["policy"]
            if not isinstance(policy, dict):
                raise ValueError("policy is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.last_error = f"unusable policy answer: {exc}"
            return False
        self.last_error = None
        if version == self.version and policy == self.policy:
            return False
        self.version, self.policy = (str(version) if version else None), policy
        self._save_cache()
        return True
