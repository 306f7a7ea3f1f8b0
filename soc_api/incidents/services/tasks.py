"""Response tasks: the steps of the category's playbook, plus tasks added by hand, tracked to done."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.db.models import Incident, User
from soc_api.incidents.models import TASK_STATES, IncidentTask
from soc_api.incidents.services.context import IncidentCtx, IncidentError, record


def add_playbook_tasks(session: Session, ctx: IncidentCtx, incident: Incident) -> int:
    """Create the steps of the incident's playbook not created before; returns how many were added."""
    book = ctx.playbooks().get(incident.category)
    if book is None:
        return 0
    have = {
        (row[0], row[1])
        for row in session.execute(
            select(IncidentTask.playbook, IncidentTask.step_id).where(IncidentTask.incident_id == incident.id)
        )
    }
    position = session.scalar(select(func.max(IncidentTask.position)).where(IncidentTask.incident_id == incident.id))
    added = 0
    for step in book.steps:
        if (book.id, step.id) in have:
            continue
        position = (position or 0) + 1
        session.add(
            IncidentTask(
                incident_id=incident.id, position=position, playbook=book.id, step_id=step.id, phase=step.phase,
                title=step.title, owner_role=step.owner_role, status="todo",
            )
        )  # fmt: skip
        added += 1
    session.flush()
    return added


def tasks_of(session: Session, incident_id: int) -> list[IncidentTask]:
    q = select(IncidentTask).where(IncidentTask.incident_id == incident_id)
    return list(session.scalars(q.order_by(IncidentTask.position, IncidentTask.id)))


def add_task(
    session: Session, ctx: IncidentCtx, incident: Incident, title: str, phase: str, owner_role: str
) -> IncidentTask:
    if incident.status == "closed":
        raise IncidentError("cannot add tasks to a closed incident")
    position = session.scalar(select(func.max(IncidentTask.position)).where(IncidentTask.incident_id == incident.id))
    task = IncidentTask(
        incident_id=incident.id, position=(position or 0) + 1, playbook=None, step_id=None, phase=phase,
        title=title, owner_role=owner_role, status="todo",
    )  # fmt: skip
    session.add(task)
    session.flush()
    record(session, ctx, incident, "task_add", f"Thêm việc: {title}", after={"task_id": task.id, "title": title})
    return task


def update_task(
    session: Session,
    ctx: IncidentCtx,
    incident: Incident,
    task: IncidentTask,
    *,
    status: str | None,
    note: str | None,
    assignee: str | None,
    unassign: bool = False,
) -> None:
    before = {"status": task.status, "note": task.note, "assignee_id": task.assignee_id}
    if status is not None:
        if status not in TASK_STATES:
            raise IncidentError(f"unknown task status {status!r}", status=422, kind="validation-error")
        task.status = status
        done = status in ("done", "skipped")
        task.done_by, task.done_at = (ctx.actor, ctx.now) if done else (None, None)
    if note is not None:
        task.note = note
    if assignee is not None:
        user = session.scalar(select(User).where(User.username == assignee, User.is_active.is_(True)))
        if user is None:
            raise IncidentError(f"no active user {assignee!r}", status=422, kind="unknown-user")
        task.assignee_id = user.id
    elif unassign:
        task.assignee_id = None
    after = {"status": task.status, "note": task.note, "assignee_id": task.assignee_id}
    record(session, ctx, incident, "task_update", f"Việc '{task.title[:80]}': {task.status}",
           before={"task_id": task.id, **before}, after={"task_id": task.id, **after})  # fmt: skip
