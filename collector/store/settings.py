"""Configuration of the event store (section ``[store]`` of the collector configuration).

Secrets (``password``, ``api_key``) are :class:`pydantic.SecretStr` so that printing or logging the
settings never reveals them; only the client constructor ever sees the plain value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from soc_common.config import Section, data_dir_default


def _default_sqlite_path() -> Path:
    return data_dir_default() / "events.db"


class StoreSettings(Section):
    """Which store to use and how to reach it."""

    kind: Literal["sqlite", "elasticsearch"] = "sqlite"
    retention_days: int = Field(default=90, ge=1, le=3650)

    # Embedded store
    sqlite_path: Path = Field(default_factory=_default_sqlite_path)

    # Elasticsearch
    hosts: list[str] = Field(default_factory=lambda: ["https://127.0.0.1:9200"])
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    index_prefix: str = Field(default="soc-events", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    namespace: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_.]*$")
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    bulk_chunk_size: int = Field(default=2000, ge=1, le=50_000)
    retries: int = Field(default=5, ge=0, le=20)
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    shards: int = Field(default=1, ge=1)
    replicas: int = Field(default=1, ge=0)
    rollover_max_age: str = "1d"
    rollover_max_primary_size: str = "50gb"
