"""Who is calling (a user or an API key), what they may do, and which sites they may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import Site

# Permissions are also the API-key scope names.
ALERTS_READ = "alerts:read"
ALERTS_TRIAGE = "alerts:triage"  # acknowledge, assign, close, bulk
ALERTS_COMMENT = "alerts:comment"
AUDIT_READ = "audit:read"
USERS_MANAGE = "users:manage"
SYSTEMS_READ = "systems:read"  # read-only registry access for machines (the collector's host->system map)
INCIDENTS_READ = "incidents:read"
INCIDENTS_MANAGE = "incidents:manage"  # create, escalate, edit, transition, tasks, evidence
INCIDENTS_REPORT = "incidents:report"  # generate reports, record sent / acknowledged
SUPPRESSIONS_MANAGE = "suppressions:manage"
NOTIFICATIONS_MANAGE = "notifications:manage"  # outbox view and retry
HANDOVER_READ = "handover:read"  # hand-over outbox and receipts
HANDOVER_BUILD = "handover:build"  # build packages on demand, re-queue
TAXII_READ = "taxii:read"  # the central centre pulling STIX over TAXII (an API-key scope)
METRICS_READ = "metrics:read"  # Prometheus scraping /metrics (an API-key scope)
ALL_PERMISSIONS = frozenset(
    {
        ALERTS_READ, ALERTS_TRIAGE, ALERTS_COMMENT, AUDIT_READ, USERS_MANAGE, SYSTEMS_READ,
        INCIDENTS_READ, INCIDENTS_MANAGE, INCIDENTS_REPORT, SUPPRESSIONS_MANAGE, NOTIFICATIONS_MANAGE,
        HANDOVER_READ, HANDOVER_BUILD, TAXII_READ, METRICS_READ,
    }
)  # fmt: skip

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": ALL_PERMISSIONS,
    "officer": frozenset(
        {
            ALERTS_READ,
            ALERTS_TRIAGE,
            ALERTS_COMMENT,
            INCIDENTS_READ,
            INCIDENTS_MANAGE,
            INCIDENTS_REPORT,
            SUPPRESSIONS_MANAGE,
            HANDOVER_READ,
            HANDOVER_BUILD,
        }
    ),
    "approver": frozenset({ALERTS_READ, ALERTS_COMMENT, INCIDENTS_READ, INCIDENTS_REPORT}),
    "auditor": frozenset({ALERTS_READ, AUDIT_READ, INCIDENTS_READ, HANDOVER_READ}),
}


@dataclass(frozen=True)
class Principal:
    name: str  # username, or "apikey:<name>"
    kind: str  # "user" or "apikey"
    permissions: frozenset[str]
    sites: frozenset[str] | None  # None = every site
    user_id: int | None = None
    role: str | None = None
    token_jti: str | None = None
    via_cookie: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def sees_site(self, site: str | None) -> bool:
        return self.sites is None or (site is not None and site in self.sites)


def expand_site_scope(session: Session, scope: str | None) -> frozenset[str] | None:
    """A scope covers its site and every site below it in the ``sites`` tree."""
    if scope is None:
        return None
    children: dict[str, list[str]] = {}
    for code, parent in session.execute(select(Site.code, Site.parent_code)):
        if parent is not None:
            children.setdefault(parent, []).append(code)
    seen: set[str] = set()
    stack = [scope]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        stack.extend(children.get(code, ()))
    return frozenset(seen)


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    unknown = [s for s in out if s not in ALL_PERMISSIONS]
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(ALL_PERMISSIONS))}")
    return out
