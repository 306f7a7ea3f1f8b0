"""A real SOC API served by uvicorn on 127.0.0.1 (free port), seeded with alerts from a replayed
pcap through the real detection engine, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.e2e_browser.browser_world import CHROMIUM, PASSWORD, Site  # noqa: E402

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed in the venv")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _seed(state: Any, tmp: Path) -> Callable[[str], dict[str, str]]:
    from agent.flows import events_from_pcap
    from collector.config import CollectorConfig
    from collector.detection.loader import load_engine
    from collector.pipeline.runner import build_processors
    from soc_api.db.models import Site as SiteRow
    from soc_api.db.models import User
    from soc_api.services.alert_sink import DatabaseAlertSink
    from soc_api.services.auth import hash_password
    from soc_common.demo import DEMO_ZONES

    digest = hash_password(PASSWORD)
    users = {"admin": ("admin", None), "officer": ("officer", "hn"), "appraiser": ("approver", "hn"),
             "owner": ("approver", "hn")}  # fmt: skip
    ids: dict[str, int] = {}
    with state.sessions.begin() as s:
        s.add(SiteRow(code="hn", name="Hà Nội"))
        s.flush()
        for name, (role, site) in users.items():
            user = User(username=name, password_hash=digest, role=role, site_scope=site, recovery_codes=[])
            s.add(user)
            s.flush()
            ids[name] = user.id
    # pcap -> agent flows -> collector enrichment -> Sigma engine -> the API's alert sink (and the store)
    config = CollectorConfig.model_validate(
        {
            "data_dir": tmp / "collector",
            "enrich": {"zones": [{"name": n, "cidrs": list(c)} for n, c in DEMO_ZONES], "default_site": "hn"},
        }
    )
    events = list(events_from_pcap(_ROOT / "pcaps" / "port-scan.pcap"))
    for processor in build_processors(config):
        events = processor.process(events)
    state.store.write(events)
    state.store.refresh()
    alerts = load_engine([_ROOT / "rules"]).process(events)
    assert alerts, "the port scan raised no alert"
    DatabaseAlertSink(state.sessions).emit(alerts)

    def bearer(name: str) -> dict[str, str]:
        token, _ = state.signer.issue(ids[name], "access", state.config.security.token_lifetime)
        return {"Authorization": f"Bearer {token}"}

    return bearer


@dataclass
class _Collector:
    stack: Any
    key: str

    @property
    def url(self) -> str:
        return str(self.stack.url)

    @property
    def ca_file(self) -> Path:
        return Path(self.stack.ca_file)

    @property
    def store(self) -> Any:
        return self.stack.store


def _collector_with_an_agent(tmp: Path) -> _Collector:
    """A real collector ingest server with one enrolled agent that has reported its inventory."""
    from collector.ingest.admin import AdminCredentials, credentials_path
    from soc_common.ecs import new_event, put
    from tests.collector.ingest_harness import start_stack

    tmp.mkdir(parents=True)
    stack = start_stack(tmp)
    key = AdminCredentials(credentials_path(stack.config.state_dir)).create_key("soc-api-e2e")
    agent = stack.agent(tmp, "pc-vp-hn-01", site="hn")
    event = new_event(kind="state", dataset="soc.inventory", module="soc")
    put(event, "host.name", "pc-vp-hn-01")
    put(event, "host.ip", ["10.10.1.21"])
    put(event, "host.os", {"name": "Windows 11 Pro", "version": "23H2", "type": "windows"})
    put(event, "soc.inventory.protection", {"product": "Windows Defender", "enabled": True, "running": True,
                                            "signature_age_days": 0.5})  # fmt: skip
    assert agent.ship([event]).status_code == 200
    return _Collector(stack, key)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    import uvicorn
    from fastapi.testclient import TestClient

    from soc_api.app import create_app
    from soc_api.config import ApiConfig

    tmp = Path(tempfile.mkdtemp(prefix="soc-e2e-web-"))
    collector = _collector_with_an_agent(tmp / "collector")
    config = ApiConfig.model_validate(
        {
            "data_dir": str(tmp / "api"),
            "database": {"url": f"sqlite:///{tmp / 'soc.db'}"},
            "security": {"session_secret": "e" * 48, "cookie_secure": False},  # plain HTTP on loopback only
            "store": {"kind": "sqlite", "sqlite_path": str(collector.store.path), "retention_days": 3650},
            "agents": {"collector_url": collector.url, "ca_file": str(collector.ca_file), "admin_key": collector.key},
        }
    )
    app = create_app(config)
    state = app.state.soc
    bearer = _seed(state, tmp)
    api = TestClient(app)
    orgs = [
        {"code": "tu-hn", "name": "Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
        {"code": "vp-tu-hn", "name": "Văn phòng Tỉnh ủy Hà Nội", "kind": "agency", "site": "hn"},
        {"code": "cntt-hn", "name": "Phòng CNTT - Cơ yếu", "kind": "dedicated_unit", "site": "hn"},
        {"code": "hd-hn", "name": "Hội đồng thẩm định độc lập", "kind": "independent_council", "site": "hn"},
    ]
    for org in orgs:
        assert api.post("/api/v1/organisations", json=org, headers=bearer("admin")).status_code == 201
    for code, member in (("cntt-hn", "appraiser"), ("tu-hn", "owner")):
        r = api.post(f"/api/v1/organisations/{code}/members", json={"username": member}, headers=bearer("admin"))
        assert r.status_code == 200, r.text
    system = {
        "id": "qlvb-hn", "name": "Hệ thống quản lý văn bản và điều hành", "site": "hn", "owner_org": "tu-hn",
        "operator_org": "vp-tu-hn", "security_unit_org": "cntt-hn", "council_org": "hd-hn",
        "facts": {"information_types": ["private"], "handles_admin_procedures": True},
    }  # fmt: skip
    assert api.post("/api/v1/systems", json=system, headers=bearer("officer")).status_code == 201
    risk = {"trigger": "first-determination", "assessed_on": "2026-09-01", "content": {c: c for c in "abcdefg"}}
    r = api.post("/api/v1/systems/qlvb-hn/risk-assessments", json=risk, headers=bearer("officer"))
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/systems/qlvb-hn/dossiers", json={}, headers=bearer("officer"))
    assert r.status_code == 201, r.text
    dossier = r.json()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield Site(f"http://127.0.0.1:{port}", state, dossier["id"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        collector.stack.server.stop()
        collector.stack.store.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = Path(tempfile.mkdtemp(prefix="soc-e2e-chromium-"))
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1366, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
        )  # fmt: skip
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)
