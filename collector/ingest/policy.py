"""Central agent policy: layered files merged per agent, versioned by content hash.

Layers, later ones winning key by key: ``default.{toml,json}``, ``site-<site>.{toml,json}``,
``agent-<agent id>.{toml,json}``, all in the policy directory. The version (and HTTP ETag) is a hash
of the merged policy, so an agent polling with ``If-None-Match`` gets ``304`` until something that
applies to it actually changes. Files are re-read when their modification time changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import tomllib
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def policy_version(policy: dict[str, Any]) -> str:
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class PolicyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[Path, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.errors = 0

    def _load(self, stem: str) -> dict[str, Any]:
        for suffix in (".toml", ".json"):
            path = self.directory / f"{stem}{suffix}"
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            with self._lock:
                cached = self._cache.get(path)
            if cached and cached[0] == mtime:
                return cached[1]
            try:
                text = path.read_text(encoding="utf-8")
                data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
                if not isinstance(data, dict):
                    raise ValueError("top level must be an object/table")
            except (OSError, ValueError) as exc:
                # Keep serving the last good version rather than a half-empty policy.
                self.errors += 1
                log.error("policy file %s unusable: %s", path, exc)
                return cached[1] if cached else {}
            with self._lock:
                self._cache[path] = (mtime, data)
            return data
        return {}

    @staticmethod
    def _safe(part: str | None) -> str | None:
        if not part or not all(c.isalnum() or c in "-_." for c in part) or part.startswith("."):
            return None
        return part

    def policy_for(self, agent_id: str, site: str | None) -> tuple[str, dict[str, Any]]:
        """(version, merged policy) for one agent."""
        policy = self._load("default")
        if (s := self._safe(site)) is not None:
            policy = _merge(policy, self._load(f"site-{s}"))
        if (a := self._safe(agent_id)) is not None:
            policy = _merge(policy, self._load(f"agent-{a}"))
        return policy_version(policy), policy
