"""Correlation windows keep an event's alert projection instead of the whole document: an alert built
from projections must equal the alert built from the documents themselves (real Windows events)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from agent.windows.evtx_file import read_evtx_files
from collector.detection.alerts import build_alert
from collector.detection.event_facts import alert_projection, expand_projection
from collector.detection.specs import RuleMeta

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "evtx-attack-samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the shared EVTX samples are not next to the repo")
def test_alerts_from_projections_equal_alerts_from_documents() -> None:
    files = sorted(str(p) for p in SAMPLES.rglob("*.evtx"))[::9]
    events = list(islice(read_evtx_files(files), 600))
    assert len(events) >= 300
    meta = RuleMeta(id="corr", title="Correlation", level="high", tags=("attack.t1110",))
    compared = 0
    for i in range(0, len(events) - 3, 3):
        window = events[i : i + 3]
        whole = build_alert(meta, window, source="correlation", group_key="g", event_ids=["a", "b", "c"])
        projected = [expand_projection(alert_projection(e)) for e in window]
        small = build_alert(meta, projected, source="correlation", group_key="g", event_ids=["a", "b", "c"])
        keep = {"detected_at"}
        assert whole.model_dump(exclude=keep) == small.model_dump(exclude=keep)
        compared += 1
    assert compared >= 100
    sizes = [(len(str(e)), len(str(alert_projection(e)))) for e in events]
    assert sum(p for _, p in sizes) < sum(w for w, _ in sizes) / 2  # the point of it: much smaller
