"""Bodies of ``/api/v1/agents``, ``/api/v1/enrolment-tokens`` and ``/api/v1/policies``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

AgentStatus = Literal["online", "silent", "never", "revoked"]
ProtectionState = Literal["on", "off", "unknown"]


class Protection(BaseModel):
    state: ProtectionState = "unknown"
    product: str | None = None
    running: bool | None = None
    signature_age_days: float | None = None
    signature_outdated: bool | None = None


class Inventory(BaseModel):
    """The latest ``soc.inventory`` snapshot, reduced to what the pages show."""

    at: datetime
    os_name: str | None = None
    os_version: str | None = None
    os_type: str | None = None
    architecture: str | None = None
    ips: list[str] = Field(default_factory=list)
    macs: list[str] = Field(default_factory=list)
    uptime_seconds: int | None = None
    cpu_usage: float | None = None
    memory_usage: float | None = None
    disks: list[dict[str, Any]] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    listening_ports: int | None = None


class AgentOut(BaseModel):
    id: str
    hostname: str
    site: str | None
    os: str | None
    version: str | None
    enrolled_at: datetime | None
    last_seen: datetime | None
    revoked_at: datetime | None
    status: AgentStatus
    protection: Protection
    policy_version: str | None = None
    addresses: list[str] = Field(default_factory=list)


class AgentDetailOut(AgentOut):
    cert_serial: str | None = None
    cert_fingerprint: str | None = None
    inventory: Inventory | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    site_layer: str | None = None
    agent_layer: dict[str, Any] | None = None


class SiteSummary(BaseModel):
    site: str | None
    agents: int
    online: int
    silent: int
    revoked: int
    protected: int
    protection_off: int
    declared_pcs: int | None = None
    declared_servers: int | None = None
    coverage: float | None = None  # protected agents over declared endpoints; None without a declaration


class AgentsList(BaseModel):
    agents: list[AgentOut]
    sites: list[SiteSummary]
    inventory_available: bool


class TokenIn(BaseModel):
    site: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    uses: int = Field(default=1, ge=1, le=10_000)
    ttl_hours: float = Field(default=24.0, ge=0.1, le=24 * 365)
    note: str | None = Field(default=None, max_length=200)


class TokenOut(BaseModel):
    id: str
    site: str | None
    uses_left: int
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    note: str | None
    state: str


class TokenCreated(TokenOut):
    token: str  # shown once


class PolicyIn(BaseModel):
    policy: dict[str, Any] | None  # None removes the layer


class PolicyOut(BaseModel):
    layer: str
    exists: bool
    file: str | None = None
    policy: dict[str, Any]
