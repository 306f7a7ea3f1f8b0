"""Build realistic Alert records for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soc_common.alert import Alert

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def make_alert(n: int = 0, **overrides: Any) -> Alert:
    """Alert number ``n`` of a brute-force rule on host ``pc-<n>`` at site ``hn``."""
    ts = overrides.pop("timestamp", T0 + timedelta(minutes=n))
    rule_id = overrides.pop("rule_id", "rule-bruteforce")
    group_key = overrides.pop("group_key", f"host=pc-{n}")
    first_event = overrides.pop("first_event", f"evt-{n}")
    fields: dict[str, Any] = {
        "id": Alert.make_id(rule_id, group_key, first_event),
        "rule_id": rule_id,
        "rule_title": "Nhiều lần đăng nhập thất bại / Multiple failed logons",
        "rule_level": "high",
        "rule_tags": ["attack.credential_access", "attack.t1110"],
        "tactics": ["credential_access"],
        "techniques": ["T1110"],
        "severity": "high",
        "timestamp": ts,
        "detected_at": ts + timedelta(seconds=5),
        "group_key": group_key,
        "event_ids": [first_event],
        "events": [{"event": {"id": first_event, "code": "4625"}, "source": {"ip": "10.0.0.9"}}],
        "host_name": f"pc-{n}",
        "user_name": "nguyenvana",
        "source_ip": "10.0.0.9",
        "site": "hn",
        "zone": "party-wan",
        "system_id": "sys-1",
    }
    fields.update(overrides)
    return Alert(**fields)
