"""Alert listing, detail, triage, ETag concurrency, bulk actions, and the audit trail behind them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from collector.store.factory import open_store
from collector.store.settings import StoreSettings
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_common.ecs import new_event
from tests.helpers.alerts import T0, make_alert
from tests.helpers.api_world import Api

PROBLEM = "application/problem+json"


def _seed(api: Api, n: int, **kw: Any) -> list[str]:
    alerts = [make_alert(100 + i, **kw) for i in range(n)]
    DatabaseAlertSink(api.state.sessions).emit(alerts)
    return [a.id for a in alerts]


def _audit(api: Api, who: str, alert_id: str) -> dict[str, Any]:
    r = api.client.get("/api/v1/audit", headers=api.headers(who), params={"object_id": alert_id})
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


def test_filters(api: Api) -> None:
    h = api.headers("admin")
    get = lambda **p: api.client.get("/api/v1/alerts", headers=h, params=p).json()["items"]  # noqa: E731
    assert {a["site"] for a in get()} == {"hn-q1", "hcm"}
    assert [a["site"] for a in get(technique="T1059.001")] == ["hcm"]
    assert [a["site"] for a in get(severity="critical")] == ["hcm"]
    assert [a["host_name"] for a in get(host="pc-hn")] == ["pc-hn"]
    assert get(status="closed") == []
    assert len(get(rule_id="rule-bruteforce", user="nguyenvana", zone="party-wan", system_id="sys-1")) == 2
    assert [a["site"] for a in get(site="hcm")] == ["hcm"]
    end = (T0 + timedelta(minutes=2)).isoformat()
    assert [a["site"] for a in get(start=(T0 + timedelta(minutes=1, seconds=30)).isoformat(), end=end)] == []
    assert len(get(start=T0.isoformat(), end=end)) == 1
    r = api.client.get("/api/v1/alerts", headers=h, params={"status": "bogus"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    r = api.client.get("/api/v1/alerts", headers=h, params={"start": "2025-01-01T00:00:00"})
    assert r.status_code == 422  # naive times are ambiguous


def test_cursor_pagination_walks_everything_once(api: Api) -> None:
    _seed(api, 23)
    h = api.headers("admin")
    cases = [("-timestamp", None, 25), ("timestamp", None, 25), ("-severity", None, 25)]
    cases += [("-timestamp", "T1110", 24), ("timestamp", "T1110", 24)]  # the technique-index path
    for sort, technique, expected in cases:
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 7, "sort": sort}
            if technique:
                params["technique"] = technique
            if cursor:
                params["cursor"] = cursor
            page = api.client.get("/api/v1/alerts", headers=h, params=params).json()
            seen += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == expected and len(set(seen)) == expected, (sort, technique)
    ts = [a["timestamp"] for a in api.client.get("/api/v1/alerts", headers=h, params={"limit": 25}).json()["items"]]
    assert ts == sorted(ts, reverse=True)
    r = api.client.get("/api/v1/alerts", headers=h, params={"cursor": "not-a-cursor"})
    assert r.status_code == 400 and r.json()["type"].endswith("bad-cursor")


def test_detail_has_raw_events_related_and_etag(api: Api, tmp_path: Path) -> None:
    alert_id = api.alert_ids["hn"]
    same_host = make_alert(50, host_name="pc-hn", site="hn", rule_id="other-rule")
    DatabaseAlertSink(api.state.sessions).emit([same_host])
    h = api.headers("officer_hn")
    r = api.client.get(f"/api/v1/alerts/{alert_id}", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert r.headers["etag"] == f'"v{body["version"]}"'
    assert body["raw_events"] is None  # no store configured
    related = {a["id"] for a in body["related"]}
    assert same_host.id in related and api.alert_ids["hcm"] not in related  # other site stays hidden
    store = open_store(StoreSettings(kind="sqlite", sqlite_path=tmp_path / "events.db"))
    matching = new_event(dataset="windows.security", event_id="evt-1", timestamp=T0)
    matching["event"]["code"] = "4625"
    store.write([matching, new_event(dataset="windows.security", event_id="unrelated", timestamp=T0)])
    api.state.store = store
    try:
        body = api.client.get(f"/api/v1/alerts/{alert_id}", headers=h).json()
    finally:
        store.close()
    assert [(e["event"]["id"], e["event"]["code"]) for e in body["raw_events"]] == [("evt-1", "4625")]


def test_triage_lifecycle_with_audit(api: Api) -> None:
    alert_id = api.alert_ids["hn"]
    h = api.headers("officer_hn")
    url = f"/api/v1/alerts/{alert_id}"
    r = api.client.post(f"{url}/acknowledge", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["acknowledged_at"]
    assert r.json()["time_to_acknowledge_s"] >= 0 and r.json()["time_to_close_s"] is None
    assert api.client.post(f"{url}/acknowledge", headers=h).status_code == 409  # not new any more
    r = api.client.post(f"{url}/assign", headers=h, json={"assignee": "officer_hn"})
    assert r.json()["status"] == "in_progress" and r.json()["assignee"] == "officer_hn"
    r = api.client.post(f"{url}/assign", headers=h, json={"assignee": "officer_hcm"})
    assert r.status_code == 409  # cannot hand an alert to someone who cannot see its site
    r = api.client.post(f"{url}/comment", headers=h, json={"body": "Đã liên hệ đơn vị"})
    assert r.status_code == 201
    r = api.client.post(f"{url}/close", headers=h, json={"reason": "false_positive", "note": "quét định kỳ"})
    assert r.json()["status"] == "closed" and r.json()["close_reason"] == "false_positive"
    assert r.json()["time_to_close_s"] >= r.json()["time_to_acknowledge_s"] >= 0
    r = api.client.post(f"{url}/close", headers=h, json={"reason": "nonsense"})
    assert r.status_code == 422
    audit = api.client.get("/api/v1/audit", headers=api.headers("auditor"), params={"object_id": alert_id}).json()
    actions = [e["action"] for e in audit["items"]]
    assert actions == ["alert.acknowledge", "alert.assign", "alert.comment", "alert.close"]
    assert audit["items"][-1]["before"]["status"] == "in_progress"
    assert audit["items"][-1]["after"]["close_reason"] == "false_positive"
    assert all(e["actor"] == "officer_hn" for e in audit["items"])
    assert api.client.get("/api/v1/audit/verify", headers=api.headers("auditor")).json()["ok"] is True


def test_if_match_conflicts(api: Api) -> None:
    alert_id = api.alert_ids["hn"]
    h = api.headers("officer_hn")
    etag = api.client.get(f"/api/v1/alerts/{alert_id}", headers=h).headers["etag"]
    r = api.client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers={**h, "If-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    r = api.client.post(
        f"/api/v1/alerts/{alert_id}/assign", headers={**h, "If-Match": etag}, json={"assignee": "officer_hn"}
    )
    assert r.status_code == 412 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["etag"] == api.client.get(f"/api/v1/alerts/{alert_id}", headers=h).headers["etag"]
    audit = api.client.get("/api/v1/audit", headers=api.headers("admin"), params={"object_id": alert_id}).json()
    assert [e["action"] for e in audit["items"]] == ["alert.acknowledge"]  # the refused change left no trace


def test_bulk_actions_are_per_alert(api: Api) -> None:
    ids = _seed(api, 3, site="hn")
    h = api.headers("officer_hn")
    api.client.post(f"/api/v1/alerts/{ids[0]}/close", headers=h, json={"reason": "benign"})
    body = {"ids": [*ids, api.alert_ids["hcm"], "missing"], "action": "close", "reason": "duplicate"}
    r = api.client.post("/api/v1/alerts/bulk", headers=h, json=body)
    assert r.status_code == 200
    statuses = {x["id"]: x["status"] for x in r.json()["results"]}
    assert statuses == {ids[0]: 409, ids[1]: 200, ids[2]: 200, api.alert_ids["hcm"]: 404, "missing": 404}
    r = api.client.post("/api/v1/alerts/bulk", headers=h, json={"ids": ["x"] * 501, "action": "acknowledge"})
    assert r.status_code == 422
    r = api.client.post("/api/v1/alerts/bulk", headers=h, json={"ids": ids, "action": "close"})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
