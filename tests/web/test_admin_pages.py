"""Administration pages: suppressions (create, lift, site scope), detector tuning per site,
hand-over status with "retry now", and the KPI page with its report downloads."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from soc_api.db.models import AuditEntry, Suppression
from soc_api.handover.models import HandoverSequence, OutboxEntry
from soc_api.services import detectors as detector_svc
from soc_common.ecs import utc_now
from tests.web.web_world import Web


def _actions(web: Web, prefix: str) -> list[str]:
    with web.api.state.sessions.begin() as s:
        stmt = select(AuditEntry.action).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq)
        return list(s.scalars(stmt))


def test_suppression_created_listed_and_lifted_with_audit(web: Web) -> None:
    web.sign_in("officer_hn")
    expires = (utc_now() + timedelta(days=30)).date().isoformat()
    conditions = "site = hn\nhost_name = pc-1\nhost_name = pc-2"
    form = {"reason": "known backup job", "expires": expires, "rule_id": "r-1", "conditions": conditions,
            "csrf_token": web.csrf("/admin/suppressions")}  # fmt: skip
    r = web.client.post("/admin/suppressions", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = web.client.get("/admin/suppressions?lang=en").text
    assert "Suppression created." in page and "known backup job" in page and "pc-1, pc-2" in page
    with web.api.state.sessions.begin() as s:
        row = s.scalars(select(Suppression)).one()
        assert row.conditions == {"site": "hn", "host_name": ["pc-1", "pc-2"]} and row.created_by == "officer_hn"
        sid = row.id
    # A site-scoped officer may not silence other sites (or every site).
    other = {**form, "conditions": "site = hcm", "csrf_token": web.csrf("/admin/suppressions")}
    web.client.post("/admin/suppressions", data=other)
    # Refused by the API's own rules: too long, no reason.
    too_long = {**form, "expires": (utc_now() + timedelta(days=400)).date().isoformat()}
    web.client.post("/admin/suppressions", data={**too_long, "csrf_token": web.csrf("/admin/suppressions")})
    web.client.post("/admin/suppressions", data={**form, "reason": "x", "csrf_token": web.csrf("/admin/suppressions")})
    with web.api.state.sessions.begin() as s:
        assert len(list(s.scalars(select(Suppression)))) == 1
    r = web.client.post(f"/admin/suppressions/{sid}/lift", data={"csrf_token": web.csrf("/admin/suppressions")})
    assert "Suppression lifted." in r.text  # the ?lang=en choice stays in the cookie
    assert _actions(web, "suppression.") == ["suppression.create", "suppression.delete"]


def test_suppression_changes_are_refused_to_roles_without_the_permission(web: Web) -> None:
    with web.api.state.sessions.begin() as s:
        s.add(Suppression(reason="global one", expires_at=utc_now() + timedelta(days=1), created_by="admin",
                          conditions={}, hit_count=0))  # fmt: skip
    web.sign_in("approver_hn")
    page = web.client.get("/admin/suppressions")
    assert page.status_code == 200 and "global one" in page.text and "/lift" not in page.text
    expires = (utc_now() + timedelta(days=3)).date().isoformat()
    data = {"reason": "approver tries", "expires": expires, "conditions": "site = hn", "csrf_token": web.csrf()}
    assert web.client.post("/admin/suppressions", data=data).status_code == 403
    web.sign_in("officer_hn")  # a global suppression is shown to a scoped officer but not liftable
    assert "/lift" not in web.client.get("/admin/suppressions").text


def test_detector_tuned_for_a_site_and_reset_through_the_api_rules(web: Web) -> None:
    web.sign_in("officer_hn")
    page = web.client.get("/admin/detectors?site=hcm&lang=en").text  # outside the scope: falls back to hn
    assert 'value="hn" selected' in page and 'name="p.distinct_hosts"' in page
    form = {"p.distinct_hosts": "120", "p.admin_ports": "22, 3389", "p.enabled": "false", "p.window": "",
            "reason": "inventory scanner", "csrf_token": web.csrf("/admin/detectors")}  # fmt: skip
    r = web.client.post("/admin/detectors/fanout/sites/hn", data=form)
    assert "Detector settings saved." in r.text
    with detector_svc.open_state(web.api.state.config) as state:
        assert state.overrides()["hn"]["fanout"] == {"distinct_hosts": 120, "admin_ports": [22, 3389], "enabled": False}
    page = web.client.get("/admin/detectors?lang=en").text
    assert "inventory scanner" in page and 'value="120"' in page
    bad = {**form, "p.distinct_hosts": "1", "csrf_token": web.csrf("/admin/detectors")}  # below the model's minimum
    assert "distinct_hosts" in web.client.post("/admin/detectors/fanout/sites/hn", data=bad).text
    other = {**form, "csrf_token": web.csrf("/admin/detectors")}
    assert "outside your scope" in web.client.post("/admin/detectors/fanout/sites/hcm", data=other).text
    reset = {"reason": "scanner retired", "csrf_token": web.csrf("/admin/detectors")}
    web.client.post("/admin/detectors/fanout/sites/hn/reset", data=reset)
    with detector_svc.open_state(web.api.state.config) as state:
        assert "fanout" not in state.overrides().get("hn", {})
    assert _actions(web, "detector.") == ["detector.override.set", "detector.override.delete"]


def _failed_package(web: Web) -> str:
    with web.api.state.sessions.begin() as s:
        s.add(HandoverSequence(site="site", last_sequence=1))
        s.add(OutboxEntry(package_id="0" * 8 + "-0000-4000-8000-" + "0" * 12, site="site", sequence=1,
                          type="alert_summary", urgent=False, document={}, sha256="a" * 64, created_at=utc_now(),
                          status="failed", attempts=20, last_error="receiver said 503"))  # fmt: skip
    return "0" * 8 + "-0000-4000-8000-" + "0" * 12


def test_handover_status_and_retry_now(web: Web) -> None:
    package = _failed_package(web)
    web.sign_in("auditor")  # may look, may not retry
    page = web.client.get("/admin/handover?lang=en").text
    assert "receiver said 503" in page and "Retry now" not in page
    assert web.client.post(f"/admin/handover/{package}/retry", data={"csrf_token": web.csrf()}).status_code == 403
    web.sign_in("officer_hn")
    r = web.client.post(f"/admin/handover/{package}/retry", data={"csrf_token": web.csrf("/admin/handover")})
    assert "Gói đã được xếp hàng cho lần chuyển giao tiếp theo." in r.text
    with web.api.state.sessions.begin() as s:
        entry = s.get(OutboxEntry, package)
        assert entry is not None and entry.status == "queued"
    again = web.client.post(f"/admin/handover/{package}/retry", data={"csrf_token": web.csrf("/admin/handover")})
    assert "Chỉ có thể gửi lại gói đã thất bại." in again.text
    assert _actions(web, "handover.") == ["handover.package_requeued"]
    web.sign_in("approver_hn")
    assert web.client.get("/admin/handover").status_code == 403


def test_kpi_page_shows_targets_and_downloads_reports(web: Web) -> None:
    web.sign_in("officer_hn")
    page = web.client.get("/kpi?year=2026&lang=en").text
    assert 'id="kpi-table"' in page and "Systems with an approved security level" in page
    assert '<svg class="chart"' in page and 'action="/api/v1/reports/annual"' in page
    assert 'value="hcm"' not in page  # only the sites in the caller's scope
    r = web.client.get("/api/v1/reports/quarterly?year=2026&quarter=1&format=xlsx&site=hn")
    assert r.status_code == 200 and r.content[:2] == b"PK"
