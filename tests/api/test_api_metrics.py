"""``/metrics`` on the SOC API: authenticated, per-route request series, backlog counted from the database."""

from __future__ import annotations

import re

from soc_api.services.auth import create_api_key
from tests.helpers.api_world import Api


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in /metrics"
    return float(match[1])


def test_metrics_need_the_metrics_permission(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=api.headers("officer_hn")).status_code == 403
    with api.state.sessions.begin() as s:
        scraper = create_api_key(s, name="prometheus", scopes=["metrics:read"]).secret
    r = api.client.get("/metrics", headers={"X-API-Key": scraper})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert api.client.get("/api/v1/alerts", headers={"X-API-Key": scraper}).status_code == 403  # only metrics


def test_backlog_and_request_series(api: Api) -> None:
    admin = api.headers("admin")
    alert = api.alert_ids["hn"]
    assert api.client.get(f"/api/v1/alerts/{alert}", headers=admin).status_code == 200
    assert api.client.get("/api/v1/alerts/no-such-alert", headers=admin).status_code == 404
    text = api.client.get("/metrics", headers=admin).text
    assert _value(text, 'soc_api_alerts{status="new"}') == 2  # the two alerts the world seeds
    assert _value(text, "soc_api_database_up") == 1
    # one series per route template, whatever the id in the URL
    ok = 'soc_api_requests_total{method="GET",route="/api/v1/alerts/{alert_id}",status="200"}'
    missing = 'soc_api_requests_total{method="GET",route="/api/v1/alerts/{alert_id}",status="404"}'
    assert _value(text, ok) == 1 and _value(text, missing) == 1
    assert alert not in text
