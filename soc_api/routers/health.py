"""Liveness/readiness without authentication (for load balancers and ``soc doctor``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from soc_api.deps import app_state

router = APIRouter()


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    state = app_state(request)
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # the probe reports, it must not fail
        database = "unreachable"
    return {"status": "ok" if database == "ok" else "degraded", "database": database}
