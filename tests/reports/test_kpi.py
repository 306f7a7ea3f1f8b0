"""KPIs of a seeded province match the counts computed by hand; drill alerts and drill incidents
are excluded from the real statistics; site scoping holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.helpers.api_world import Api
from tests.reports.seed import EXPECTED, seed_province, today_vn


def _kpi(api: Api, user: str = "admin", **params: Any) -> dict[str, Any]:
    r = api.client.get("/api/v1/kpi", params=params, headers=api.headers(user))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_province_kpis_match_hand_counts(api: Api) -> None:
    seed_province(api.state)
    year = today_vn().year
    body = _kpi(api, site="hn", year=year)
    total = body["total"]
    assert [s["site"] for s in body["sites"]] == ["hn", "hn-q1"]
    assert total["systems_total"] == EXPECTED["systems_total"]
    assert total["systems_level_approved"]["count"] == EXPECTED["level_approved"]
    assert total["systems_plan_full"]["count"] == EXPECTED["plan_full"]
    assert total["systems_assessed_on_time"]["count"] == EXPECTED["assessed_on_time"]
    protected = total["systems_protected_by_level"]
    assert (protected["count"], protected["of"]) == (EXPECTED["protected_by_level"], 5)
    assert protected["share"] == 0.2
    # Targets: 2025 40%, 2026 70%, 2027+ 100% (defaults of the plans); 20% meets none of them.
    assert protected["target"] == {2025: 0.4, 2026: 0.7}.get(year, 1.0 if year > 2026 else None)
    assert protected["met"] is False
    hn = body["sites"][0]
    assert (hn["pcs_registered"], hn["pcs_monitored"]["count"], hn["pcs_protected"]["count"]) == (4, 3, 2)
    assert hn["pcs_declared"] is True
    q1 = body["sites"][1]
    assert (q1["pcs_declared"], q1["pcs_registered"], q1["pcs_monitored"]["count"]) == (False, 1, 1)
    assert total["pcs_registered"] == EXPECTED["pcs_registered"]
    assert total["pcs_monitored"]["count"] == EXPECTED["pcs_monitored_total"]
    assert total["pcs_protected"]["count"] == EXPECTED["pcs_protected_total"]
    assert total["pcs_protected"]["share"] == 0.6
    assert (total["servers_registered"], total["servers_monitored"]["count"]) == (2, 1)
    assert total["endpoint_data_complete"] is True
    assert total["actions_open"] == EXPECTED["actions_open"]
    assert total["actions_overdue"] == EXPECTED["actions_overdue"]
    incident_day = (today_vn() - timedelta(days=10)).year == year
    if incident_day:
        assert total["incidents"]["by_category"] == EXPECTED["incidents"]
        assert total["incidents"]["mean_hours_to_report"] == EXPECTED["mean_hours_to_report"]
        assert (total["alerts_real"], total["alerts_drill"]) == (EXPECTED["alerts_real"], EXPECTED["alerts_drill"])
    planned = sum(d.year == year for d in (today_vn() - timedelta(days=30), today_vn() + timedelta(days=20)))
    done = int((today_vn() - timedelta(days=30)).year == year)
    assert (total["drills_planned"], total["drills_done"]["count"]) == (planned, done)


def test_kpis_are_scoped_to_the_callers_sites(api: Api) -> None:
    seed_province(api.state)
    mine = _kpi(api, "officer_hcm")
    assert [s["site"] for s in mine["sites"]] == ["hcm"]
    assert mine["total"]["systems_total"] == 1
    r = api.client.get("/api/v1/kpi", params={"site": "hn"}, headers=api.headers("officer_hcm"))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_declared_assets_are_audited_and_need_an_editor(api: Api) -> None:
    r = api.client.put(
        "/api/v1/kpi/declared-assets/hn", json={"pcs": 120, "servers": 9}, headers=api.headers("auditor")
    )
    assert r.status_code == 403
    r = api.client.put(
        "/api/v1/kpi/declared-assets/hn", json={"pcs": 120, "servers": 9}, headers=api.headers("officer_hn")
    )
    assert r.status_code == 200, r.text
    assert _kpi(api, site="hn")["sites"][0]["pcs_registered"] == 120
    audit = api.client.get("/api/v1/audit", params={"action": "kpi.declared_assets"}, headers=api.headers("auditor"))
    assert audit.status_code == 200, audit.text
    assert "kpi.declared_assets" in audit.text
