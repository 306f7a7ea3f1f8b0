"""Detector tuning per site through the API: who may, what is refused, both audit trails, and a
real anomaly cycle honouring the change without a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collector.anomaly.service import AnomalyService
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState
from collector.config import CollectorConfig
from collector.store.sqlite import SqliteEventStore
from soc_api.db.models import AuditEntry
from soc_api.routers import detectors
from soc_api.services import audit
from soc_api.services import detectors as svc
from soc_common.alert import Alert
from soc_common.ecs import Event, iso, new_event, stable_event_id
from tests.helpers.api_world import Api

BASE = "/api/v1/detectors"
REASON = "máy quét kiểm kê tài sản"


@pytest.fixture
def dapi(api: Api) -> Api:
    """The shared API world, with the detectors router mounted if the lead has not wired it yet."""
    app = api.client.app
    if not any(getattr(r, "path", "").startswith(BASE) for r in app.routes):  # type: ignore[attr-defined]
        app.include_router(detectors.router)  # type: ignore[attr-defined]
    return api


def _state(api: Api) -> AnomalyState:
    return AnomalyState(svc.state_path(api.state.config))


def _put(api: Api, user: str, detector: str, site: str, body: dict[str, Any], **headers: str) -> Any:
    return api.client.put(f"{BASE}/{detector}/sites/{site}", headers={**api.headers(user), **headers}, json=body)


def _problem(r: Any, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:soc:problem:{kind}"
    return body


def test_list_shows_defaults_docs_and_scoped_overrides(dapi: Api) -> None:
    for site in ("hn", "hcm"):
        r = _put(dapi, "admin", "fanout", site, {"params": {"distinct_hosts": 120}, "reason": REASON})
        assert r.status_code == 200, r.text
    r = dapi.client.get(BASE, headers=dapi.headers("admin"))
    assert r.status_code == 200
    items = {d["name"]: d for d in r.json()["items"]}
    assert set(items) == set(svc.DETECTOR_PARAMS)
    fanout = items["fanout"]
    params = {p["name"]: p for p in fanout["parameters"]}
    assert params["distinct_hosts"]["default"] == 50
    assert params["distinct_hosts"]["schema"] == {"minimum": 2, "type": "integer"}
    assert params["distinct_hosts"]["doc"] == "host sweep"
    # the comment above the field in the base class, and the detector's own note
    assert params["learning_days"]["doc"].startswith("How much history an entity")
    assert params["learning_days"]["doc"].endswith("(FanoutParams: thresholds are absolute; habits are learned)")
    assert fanout["learning_days"] == 0.0 and fanout["enabled"] is True
    assert items["rarity"]["learning_days"] == 7.0
    assert "Distinct destinations" in fanout["description"]
    assert set(fanout["sites"]) == {"hn", "hcm"}
    assert fanout["sites"]["hn"]["params"] == {"distinct_hosts": 120}
    # an officer sees only the overrides of the sites in scope
    r = dapi.client.get(BASE, headers=dapi.headers("officer_hn"))
    fanout = next(d for d in r.json()["items"] if d["name"] == "fanout")
    assert set(fanout["sites"]) == {"hn"}


# (user, site) -> expected status of PUT; hn-q1 is under hn, so officer_hn may change it.
MATRIX: dict[tuple[str, str], int] = {
    ("admin", "hn"): 200, ("admin", "hcm"): 200, ("admin", "hn-q1"): 200,
    ("officer_hn", "hn"): 200, ("officer_hn", "hn-q1"): 200, ("officer_hn", "hcm"): 403,
    ("officer_hcm", "hcm"): 200, ("officer_hcm", "hn"): 403,
    ("approver_hn", "hn"): 403, ("auditor", "hn"): 403,
}  # fmt: skip


def test_role_and_site_matrix(dapi: Api) -> None:
    mismatches = []
    for (user, site), want in MATRIX.items():
        r = _put(dapi, user, "beacon", site, {"enabled": False, "reason": f"{REASON} {user}"})
        if r.status_code != want:
            mismatches.append(f"PUT {user}@{site}: {r.status_code} want {want}")
        d = dapi.client.delete(f"{BASE}/beacon/sites/{site}", params={"reason": REASON}, headers=dapi.headers(user))
        want_delete = 204 if want == 200 else want
        if d.status_code != want_delete:
            mismatches.append(f"DELETE {user}@{site}: {d.status_code} want {want_delete}")
    for user in ("admin", "officer_hn", "approver_hn", "auditor"):  # every role may read
        for path in (BASE, f"{BASE}/beacon/history"):
            r = dapi.client.get(path, headers=dapi.headers(user))
            if r.status_code != 200:
                mismatches.append(f"GET {path} as {user}: {r.status_code}")
    assert not mismatches, "\n".join(mismatches)
    _problem(dapi.client.get(BASE), 401, "unauthorised")
    _problem(dapi.client.put(f"{BASE}/beacon/sites/hn", json={"enabled": False, "reason": REASON}), 401, "unauthorised")


def test_validation_errors_are_problems_and_leave_no_trace(dapi: Api) -> None:
    _problem(_put(dapi, "admin", "nosuch", "hn", {"enabled": False, "reason": REASON}), 404, "unknown-detector")
    body = _problem(_put(dapi, "admin", "fanout", "hn", {"params": {"distinct_hostz": 5}, "reason": REASON}),
                    422, "validation-error")  # fmt: skip
    assert body["errors"] == [{"loc": ["params", "distinct_hostz"], "msg": "unknown parameter"}]
    body = _problem(_put(dapi, "admin", "fanout", "hn", {"params": {"distinct_hosts": 1}, "reason": REASON}),
                    422, "validation-error")  # fmt: skip
    assert body["errors"][0]["loc"] == ["params", "distinct_hosts"]
    _problem(_put(dapi, "admin", "beacon", "hn", {"params": {"min_regular_fraction": 1.5}, "reason": REASON}),
             422, "validation-error")  # fmt: skip
    _problem(_put(dapi, "admin", "fanout", "hn", {"params": {"distinct_hosts": 60}}), 422, "validation-error")
    _problem(_put(dapi, "admin", "fanout", "hn", {"params": {"distinct_hosts": 60}, "reason": "ok"}),
             422, "validation-error")  # fmt: skip
    _problem(_put(dapi, "admin", "fanout", "hn", {"params": {}, "reason": REASON}), 422, "validation-error")
    _problem(_put(dapi, "admin", "fanout", "nowhere", {"enabled": False, "reason": REASON}), 404, "not-found")
    r = dapi.client.delete(f"{BASE}/fanout/sites/hn", params={"reason": REASON}, headers=dapi.headers("admin"))
    _problem(r, 404, "not-found")
    r = dapi.client.delete(f"{BASE}/fanout/sites/hn", params={"reason": "x"}, headers=dapi.headers("admin"))
    _problem(r, 422, "validation-error")
    state = _state(dapi)
    try:
        assert state.override_audit() == [] and state.overrides() == {}
    finally:
        state.close()
    with dapi.state.sessions() as s:
        assert not list(s.scalars(select(AuditEntry).where(AuditEntry.object_type == "detector_override")))


def test_changes_land_in_both_audit_trails_with_etags(dapi: Api) -> None:
    r = _put(dapi, "officer_hn", "fanout", "hn", {"params": {"distinct_hosts": 200, "window": "15m"}, "reason": REASON})
    assert r.status_code == 200, r.text
    assert r.json()["params"] == {"distinct_hosts": 200, "window": 900.0}  # normalised duration
    tag = r.headers["ETag"]
    stale = _put(dapi, "admin", "fanout", "hn", {"enabled": False, "reason": "lab network now"}, **{"If-Match": '"x"'})
    assert _problem(stale, 412, "stale")["etag"] == tag
    r = _put(dapi, "admin", "fanout", "hn", {"enabled": False, "reason": "lab network now"}, **{"If-Match": tag})
    assert r.status_code == 200 and r.json()["enabled"] is False
    d = dapi.client.delete(
        f"{BASE}/fanout/sites/hn", params={"reason": "scanner retired"}, headers=dapi.headers("admin")
    )
    assert d.status_code == 204

    history = dapi.client.get(f"{BASE}/fanout/history", headers=dapi.headers("auditor")).json()["items"]
    assert [(h["actor"], h["reason"], h["params"], h["previous"]) for h in history] == [
        ("admin", "scanner retired", {}, {"enabled": False}),
        ("admin", "lab network now", {"enabled": False}, {"distinct_hosts": 200, "window": 900.0}),
        ("officer_hn", REASON, {"distinct_hosts": 200, "window": 900.0}, None),
    ]
    assert all(h["site"] == "hn" and h["at"].endswith("Z") for h in history)
    # history of other sites is hidden from an officer, and the site filter works
    _put(dapi, "admin", "fanout", "hcm", {"enabled": False, "reason": REASON})
    seen = dapi.client.get(f"{BASE}/fanout/history", headers=dapi.headers("officer_hn")).json()["items"]
    assert {h["site"] for h in seen} == {"hn"} and len(seen) == 3
    only = dapi.client.get(f"{BASE}/fanout/history", params={"site": "hcm"}, headers=dapi.headers("admin")).json()
    assert [h["site"] for h in only["items"]] == ["hcm"]

    with dapi.state.sessions() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.object_type == "detector_override")
                              .order_by(AuditEntry.seq)))  # fmt: skip
        assert [(e.actor, e.action, e.object_id) for e in rows] == [
            ("officer_hn", "detector.override.set", "fanout@hn"),
            ("admin", "detector.override.set", "fanout@hn"),
            ("admin", "detector.override.delete", "fanout@hn"),
            ("admin", "detector.override.set", "fanout@hcm"),
        ]
        assert rows[1].before == {"params": {"distinct_hosts": 200, "window": 900.0}}
        assert rows[1].after == {"params": {"enabled": False}, "reason": "lab network now"}
        assert rows[2].after == {"reason": "scanner retired"}
        assert rows[2].source_ip is not None
        assert audit.verify(s).ok


# -- a real anomaly cycle ----------------------------------------------------------------------------

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _sweep(minute: int, source: str, site: str) -> list[Event]:
    """One source touching 79 hosts on SMB within a minute: a host sweep and lateral spread."""
    out = []
    for i in range(1, 80):
        ts = T0 + timedelta(minutes=minute, seconds=i)
        ev = new_event(dataset="network_traffic.flow", timestamp=ts, event_id=stable_event_id(site, source, i))
        ev["event"].update({"category": ["network"], "start": iso(ts)})
        ev["source"] = {"ip": source, "port": 50000 + i, "bytes": 60, "packets": 1}
        ev["destination"] = {"ip": f"10.0.0.{i}", "port": 445, "bytes": 60, "packets": 1}
        ev["network"] = {"transport": "tcp"}
        ev["soc"] = {"site": site}
        out.append(ev)
    return out


class _Sink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alerts: Any) -> None:
        self.alerts.extend(alerts)


def test_running_service_picks_up_api_override(dapi: Api, tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    sink = _Sink()
    config = CollectorConfig.model_validate({"data_dir": dapi.state.config.data_dir})
    service = AnomalyService(config, store, sink, AnomalySettings(initial_recent=86400, evidence_events=0))
    try:
        assert service.state.path == svc.state_path(dapi.state.config)  # the API writes where the collector reads
        store.write(_sweep(5, "10.10.5.23", "hn") + _sweep(6, "10.30.5.23", "hcm"))
        store.refresh()
        # the service is already running (state open) when the officer raises the threshold for hn
        service.run_once(T0 - timedelta(hours=1))
        r = _put(dapi, "officer_hn", "fanout", "hn", {"params": {"distinct_hosts": 200, "lateral_hosts": 200},
                                                      "reason": REASON})  # fmt: skip
        assert r.status_code == 200, r.text
        report = service.run_once(T0 + timedelta(hours=2))
        assert report.errors == {}
        fired = {(a.rule_id, a.site) for a in sink.alerts if a.rule_id.startswith("anomaly.fanout")}
        assert fired == {("anomaly.fanout.host_sweep", "hcm"), ("anomaly.fanout.lateral_spread", "hcm")}
    finally:
        service.stop()
        store.close()
