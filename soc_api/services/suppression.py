"""Suppression rules: silence known-benign alerts before they reach the triage queue.

A suppression matches an alert when its ``rule_id`` is unset or equal, it has not expired, and
every condition holds. Conditions map a field to a value or a list of accepted values; the field
is an alert attribute (``host_name``, ``user_name``, ``source_ip``, ``destination_ip``, ``site``,
``zone``, ``system_id``, ``severity``) or, prefixed ``event.``-style dotted ECS path, a field of
any of the alert's event copies (``process.executable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from soc_api.db.models import Suppression
from soc_common import ecs
from soc_common.alert import Alert

ALERT_FIELDS = frozenset(
    {"host_name", "user_name", "source_ip", "destination_ip", "site", "zone", "system_id", "severity"}
)


def _accepts(expected: Any, actual: Any) -> bool:
    if actual is None:
        return False
    values = expected if isinstance(expected, list) else [expected]
    return any(str(v) == str(actual) for v in values)


def _condition_holds(alert: Alert, field: str, expected: Any) -> bool:
    if field in ALERT_FIELDS:
        return _accepts(expected, getattr(alert, field))
    return any(_accepts(expected, ecs.get(event, field)) for event in alert.events)


def matches(rule: Suppression, alert: Alert, now: datetime) -> bool:
    if rule.rule_id is not None and rule.rule_id != alert.rule_id:
        return False
    if rule.expires_at is not None and rule.expires_at <= now:
        return False
    return all(_condition_holds(alert, f, v) for f, v in (rule.conditions or {}).items())


def active_for(session: Session, rule_ids: Sequence[str], now: datetime) -> list[Suppression]:
    """Suppressions that could apply to alerts of these rules (one query per batch)."""
    stmt = select(Suppression).where(
        or_(Suppression.rule_id.is_(None), Suppression.rule_id.in_(sorted(set(rule_ids)))),
        or_(Suppression.expires_at.is_(None), Suppression.expires_at > now),
    )
    return list(session.scalars(stmt))
