"""Record the wire format of today's agent into tests/deploy/fixtures/agent_wire_v1.json (run once per release).

    .venv/bin/python tests/deploy/make_agent_fixture.py

The real Shipper reads a real spool and builds its request; only the network send is replaced by a
recorder, so the fixture holds exactly the method, path, headers and (gzip) body that agent version
sends. tests/deploy/test_upgrade.py replays it against a running collector, so a collector change
that would refuse agents of this version fails there. Commit the output; do not regenerate it to
make a failing test pass.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.config import AgentConfig  # noqa: E402
from agent.shipper import Response, Shipper  # noqa: E402
from agent.spool import Spool  # noqa: E402
from soc_common import __version__ as agent_version  # noqa: E402
from soc_common.ecs import Event, iso, new_event, stable_event_id  # noqa: E402

OUT = Path(__file__).resolve().parent / "fixtures" / "agent_wire_v1.json"


def sample_events() -> list[Event]:
    """One event of each kind an agent ships most: auth log, Windows event, inventory heartbeat."""
    when = iso(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    auth = new_event(dataset="system.auth", event_id=stable_event_id("wire", 1))
    auth.update({"@timestamp": when, "message": "Failed password for root from 10.9.0.7 port 51234 ssh2"})
    auth["event"].update({"category": ["authentication"], "outcome": "failure", "original": auth["message"]})
    auth["host"] = {"name": "pc-hn-01", "os": {"type": "linux"}}
    win = new_event(dataset="windows.security", event_id=stable_event_id("wire", 2))
    win.update({"@timestamp": when, "winlog": {"channel": "Security", "event_id": 4625, "event_data": {}}})
    win["event"].update({"code": "4625", "category": ["authentication"], "outcome": "failure"})
    win["host"] = {"name": "pc-hn-02", "os": {"type": "windows"}}
    inventory = new_event(dataset="soc.inventory", event_id=stable_event_id("wire", 3))
    inventory.update({"@timestamp": when, "host": {"name": "pc-hn-01", "ip": ["10.1.0.5"]}})
    return [auth, win, inventory]


class Recorder:
    """Stands in for the network: keeps the request and answers as a collector would."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        self.requests.append({"method": method, "path": path, "headers": dict(headers or {}), "body": body or b""})
        return Response(200, {}, json.dumps({"accepted": 3, "duplicates": 0, "rejected": []}).encode())

    def close(self) -> None:
        pass


def main() -> None:
    config = AgentConfig.model_validate({"sources": []})
    events = sample_events()
    with tempfile.TemporaryDirectory() as tmp:
        spool = Spool(Path(tmp) / "spool", config.spool)
        spool.append(events)
        shipper = Shipper(spool, config.shipping, "https://collector.invalid:8443", lambda: None)
        recorder = Recorder()
        shipper._client = recorder  # type: ignore[assignment]  # the one replaced part: the socket
        shipper.ship_once(threading.Event())
    [sent] = recorder.requests
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "agent_version": agent_version,
                "protocol": 1,
                "recorded_at": iso(datetime.now(UTC)),
                "method": sent["method"],
                "path": sent["path"],
                "headers": sent["headers"],
                "body_base64": base64.b64encode(sent["body"]).decode(),
                "event_ids": [e["event"]["id"] for e in events],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {OUT} ({len(sent['body'])} body bytes, headers {sorted(sent['headers'])})")


if __name__ == "__main__":
    main()
