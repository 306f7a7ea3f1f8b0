"""The incident test world: the real app (SQLite and PostgreSQL) with users of every role on the site tree
``hn`` > ``hn-q1`` and ``hcm``, an alert per site, and a level-3 system per site."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from soc_api.config import ApiConfig
from soc_api.db.models import Site, User
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_api.state import AppState
from soc_api.systems.models import InformationSystem, Organisation

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.helpers.alerts import make_alert  # noqa: E402
from tests.helpers.api_world import USERS, Api, password_hash  # noqa: E402


def incident_config(db_url: str, tmp_path: Path, **extra: Any) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "database": {"url": db_url},
            "security": {"session_secret": "k" * 48, "lockout_threshold": 3},
            **extra,
        }
    )


def seed(state: AppState) -> Api:
    out = Api(client=None, state=state)  # type: ignore[arg-type]
    with state.sessions.begin() as s:
        s.add_all([Site(code="hn", name="Hà Nội"), Site(code="hcm", name="TP. Hồ Chí Minh")])
        s.flush()
        s.add(Site(code="hn-q1", name="Quận 1 (HN)", parent_code="hn"))
        s.flush()
        for name, (role, site) in USERS.items():
            user = User(
                username=name, password_hash=password_hash(), role=role, site_scope=site, recovery_codes=[],
                email=f"{name}@tinhuy.example",
            )  # fmt: skip
            s.add(user)
            s.flush()
            out.user_ids[name] = user.id
        org = Organisation(code="vp", name="Văn phòng Tỉnh ủy", kind="agency", site="hn")
        s.add(org)
        s.flush()
        for site, level, secret in (("hn-q1", 3, False), ("hcm", 2, False)):
            s.add(
                InformationSystem(
                    id=f"sys-{site}", name=f"Cổng thông tin điện tử {site}", site=site, owner_org_id=org.id,
                    operator_org_id=org.id, security_unit_org_id=org.id, approved_level=level, state_secret=secret,
                )
            )  # fmt: skip
    sink = DatabaseAlertSink(state.sessions)
    hn = make_alert(1, site="hn-q1", host_name="pc-hn", system_id="sys-hn-q1")
    hn2 = make_alert(3, site="hn-q1", host_name="pc-hn-2", system_id="sys-hn-q1")
    hcm = make_alert(2, site="hcm", host_name="pc-hcm", system_id="sys-hcm", severity="critical")
    sink.emit([hn, hn2, hcm])
    out.alert_ids = {"hn": hn.id, "hn2": hn2.id, "hcm": hcm.id}
    return out
