"""The navigation registry: each feature area registers its pages, the layout shows those the
caller may open. A feature whose service does not exist simply registers nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from soc_api.services.principal import Principal


@dataclass(frozen=True)
class NavEntry:
    key: str  # stable id, also the ``aria-current`` match
    label: str  # msgid
    href: str
    order: int = 100
    allowed: Callable[[Principal], bool] = field(default=lambda _p: True)


_ENTRIES: dict[str, NavEntry] = {}


def register(entry: NavEntry) -> None:
    """Add (or replace, by key) a navigation entry."""
    _ENTRIES[entry.key] = entry


def entries_for(principal: Principal | None) -> list[NavEntry]:
    if principal is None:
        return []
    return sorted((e for e in _ENTRIES.values() if e.allowed(principal)), key=lambda e: (e.order, e.key))


def can(permission: str) -> Callable[[Principal], bool]:
    return lambda p: p.can(permission)


def has_role(*roles: str) -> Callable[[Principal], bool]:
    return lambda p: p.role in roles
