"""The APScheduler wiring: both jobs registered in Vietnam time, and each job body runs against a
real app state (reminders stored, running drills re-marked) without raising."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from soc_api.db.models import AlertRow
from soc_api.drills.models import Drill
from soc_api.reminders.models import Notification
from soc_api.reminders.scheduler import drill_marking_job, reminder_job, start_scheduler
from soc_api.services.alert_sink import alert_to_row
from soc_common.ecs import utc_now
from tests.helpers.alerts import make_alert
from tests.helpers.api_world import Api
from tests.reports.seed import seed_province


@pytest.fixture
def config_sections() -> dict[str, object]:
    return {"reminders": {"enabled": True, "run_hour": 6}}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # scheduling is database-agnostic
def test_jobs_are_registered_and_run(api: Api) -> None:
    scheduler = start_scheduler(api.state)
    assert scheduler is not None
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"reminders", "drill-marking"}
        assert str(jobs["reminders"].trigger.timezone) == "Asia/Ho_Chi_Minh"
        assert jobs["reminders"].next_run_time.hour == 6
    finally:
        scheduler.shutdown(wait=False)
    seed_province(api.state)
    start = utc_now() - timedelta(hours=1)
    with api.state.sessions.begin() as s:
        s.add(alert_to_row(make_alert(40, host_name="pc-live", site="hn", timestamp=start + timedelta(minutes=5))))
        s.add(
            Drill(
                site="hn",
                title="Đang diễn tập",
                kind="live",
                status="running",
                planned_on=start.date(),
                started_at=start,
                participant_hosts=["pc-live"],
                created_by="t",
            )
        )
    drill_marking_job(api.state)
    reminder_job(api.state)
    with api.state.sessions() as s:
        assert s.scalar(select(AlertRow.drill).where(AlertRow.host_name == "pc-live")) is True
        assert (s.scalar(select(func.count()).select_from(Notification)) or 0) > 0  # overdue action at least
