"""Which sites a KPI or report covers: a site and everything below it, within the caller's scope."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import Site
from soc_api.services.principal import Principal, expand_site_scope
from soc_api.systems.services.context import RuleError

ALL = "*"


def covered_sites(session: Session, principal: Principal, site: str | None) -> tuple[str, list[str]]:
    """(scope label, site codes). ``site`` None = everything the caller sees."""
    if site is None:
        if principal.sites is None:
            return ALL, sorted(session.scalars(select(Site.code)))
        return ALL, sorted(principal.sites)
    if session.get(Site, site) is None or not principal.sees_site(site):
        raise RuleError("no such site", status=404, kind="not-found")
    below = expand_site_scope(session, site) or frozenset({site})
    visible = below if principal.sites is None else below & principal.sites
    return site, sorted(visible)


def registry_path(kpi_path: Path | None, systems_path: Path | None) -> Path | None:
    return kpi_path or systems_path
