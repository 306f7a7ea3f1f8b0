"""Who may do what, where: role x endpoint x own-site/other-site.

Site ``hn`` has a child ``hn-q1`` (the "own" alert lives there: scopes cover sub-sites); ``hcm``
is the other site. Out-of-scope alerts answer 404, so their existence does not leak.
"""

from __future__ import annotations

from typing import Any

import pytest

from soc_api.services.alert_sink import DatabaseAlertSink
from tests.helpers.alerts import make_alert
from tests.helpers.api_world import Api

# (name, method, path template, json body, allowed roles)
ENDPOINTS: list[tuple[str, str, str, dict[str, Any] | None, set[str]]] = [
    ("detail", "GET", "/api/v1/alerts/{id}", None, {"admin", "officer", "approver", "auditor"}),
    ("comment", "POST", "/api/v1/alerts/{id}/comment", {"body": "ghi chú"}, {"admin", "officer", "approver"}),
    ("acknowledge", "POST", "/api/v1/alerts/{id}/acknowledge", None, {"admin", "officer"}),
    ("assign", "POST", "/api/v1/alerts/{id}/assign", {"assignee": None}, {"admin", "officer"}),
    ("close", "POST", "/api/v1/alerts/{id}/close", {"reason": "benign"}, {"admin", "officer"}),
]
# username -> (role, the site of "its" alert or None when it sees all)
CALLERS = {
    "admin": ("admin", None),
    "officer_hn": ("officer", "hn"),
    "approver_hn": ("approver", "hn"),
    "auditor": ("auditor", None),
}


def _expected(role: str, scope: str | None, target_site: str, allowed: set[str]) -> int:
    if role not in allowed:
        return 403
    if scope is not None and scope != target_site:
        return 404
    return 200


def test_alert_endpoints_matrix(api: Api) -> None:
    mismatches: list[str] = []
    for target_site in ("hn", "hcm"):
        for name, method, path, body, allowed in ENDPOINTS:
            for username, (role, scope) in CALLERS.items():
                # a fresh alert per case, so earlier transitions do not decide later answers
                alert = make_alert(
                    1000, site="hn-q1" if target_site == "hn" else "hcm",
                    group_key=f"{target_site}-{name}-{username}",
                )  # fmt: skip
                DatabaseAlertSink(api.state.sessions).emit([alert])
                r = api.client.request(method, path.format(id=alert.id), headers=api.headers(username), json=body)
                got = 200 if r.status_code in (200, 201) else r.status_code
                want = _expected(role, scope, target_site, allowed)
                if got != want:
                    mismatches.append(f"{username} {name} on {target_site}: got {r.status_code}, want {want}")
                if got != 200:
                    assert r.headers["content-type"].startswith("application/problem+json")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    ("username", "sites"),
    [
        ("admin", {"hn-q1", "hcm"}),
        ("auditor", {"hn-q1", "hcm"}),
        ("officer_hn", {"hn-q1"}),
        ("approver_hn", {"hn-q1"}),
        ("officer_hcm", {"hcm"}),
    ],
)
def test_list_is_scoped_to_the_callers_sites(api: Api, username: str, sites: set[str]) -> None:
    r = api.client.get("/api/v1/alerts", headers=api.headers(username), params={"site": ["hn-q1", "hcm"]})
    assert r.status_code == 200
    assert {a["site"] for a in r.json()["items"]} == sites


@pytest.mark.parametrize(
    ("username", "status"),
    [("admin", 200), ("auditor", 200), ("officer_hn", 403), ("approver_hn", 403)],
)
def test_audit_log_is_for_auditors_and_admins(api: Api, username: str, status: int) -> None:
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        assert api.client.get(path, headers=api.headers(username)).status_code == status


def test_bulk_respects_role_and_site(api: Api) -> None:
    body = {"ids": [api.alert_ids["hn"], api.alert_ids["hcm"]], "action": "acknowledge"}
    assert api.client.post("/api/v1/alerts/bulk", headers=api.headers("approver_hn"), json=body).status_code == 403
    r = api.client.post("/api/v1/alerts/bulk", headers=api.headers("officer_hn"), json=body)
    assert [x["status"] for x in r.json()["results"]] == [200, 404]
