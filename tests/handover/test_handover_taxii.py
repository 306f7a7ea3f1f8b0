"""The TAXII 2.1 endpoint, served by uvicorn over TLS, driven by the OASIS taxii2-client."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import requests
from taxii2client.v21 import Server, as_pages

from soc_api.app import create_app
from soc_api.db.models import ApiKey
from soc_api.db.session import begin_write
from soc_api.handover import outbox
from soc_api.handover.keys import KeyRing
from soc_api.handover.models import StixObjectRow
from soc_api.handover.taxii import MEDIA_TYPE
from soc_api.state import AppState
from soc_common.ecs import utc_now
from tests.handover.conftest import SITE, ServerThread, tls_options
from tests.handover.pki import Pki
from tests.handover.samples import all_records
from tests.helpers.api_world import make_config

SECRET = "s" * 43


@dataclass
class Taxii:
    url: str
    ca: str
    key: str  # full API key with taxii:read
    weak_key: str  # an API key without it
    total: int
    summary_added: str  # a time between the two packages' objects


def _key(state: AppState, prefix: str, scopes: list[str]) -> str:
    # Created as a row: principal.validate_scopes does not know "taxii:read" yet (see the report).
    with state.sessions() as s, s.begin():
        begin_write(s)
        s.add(
            ApiKey(
                name=f"centre-{prefix}",
                prefix=prefix,
                secret_hash=hashlib.sha256(SECRET.encode()).hexdigest(),
                scopes=scopes,
            )
        )
    return f"soc_{prefix}_{SECRET}"


@pytest.fixture
def taxii(db_url: str, tmp_path: Path, ring: KeyRing, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[Taxii]:
    # requests lets these variables override a session's own CA file; the test CA must win.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    app = create_app(make_config(db_url, tmp_path))
    state: AppState = app.state.soc
    start = utc_now() - timedelta(hours=1)
    with state.sessions() as s, s.begin():
        begin_write(s)
        outbox.enqueue(
            s,
            site=SITE,
            package_type="incident_report",
            record=all_records()["incident_report"],
            key=ring.current(),
            now=start,
        )
        outbox.enqueue(
            s,
            site=SITE,
            package_type="alert_summary",
            record=all_records()["alert_summary"],
            key=ring.current(),
            now=start + timedelta(minutes=30),
        )
    with state.sessions() as s:
        total = s.query(StixObjectRow).count()
    key, weak = _key(state, "aaaa", ["taxii:read"]), _key(state, "bbbb", ["alerts:read"])
    with ServerThread(app, **tls_options(pki, client_certs=False)) as server:
        yield Taxii(
            url=f"https://127.0.0.1:{server.port}/taxii2/",
            ca=str(pki.ca_cert),
            key=key,
            weak_key=weak,
            total=total,
            summary_added=(start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
    state.engine.dispose()


def _status_of_refusal(server: Server) -> int:
    with pytest.raises(requests.HTTPError) as refused:
        _ = server.title
    assert refused.value.response is not None
    return int(refused.value.response.status_code)


def test_anonymous_and_unscoped_callers_are_refused(taxii: Taxii) -> None:
    assert _status_of_refusal(Server(taxii.url, verify=taxii.ca)) == 401
    assert _status_of_refusal(Server(taxii.url, user="centre", password="soc_nope_nope", verify=taxii.ca)) == 401
    assert _status_of_refusal(Server(taxii.url, user="centre", password=taxii.weak_key, verify=taxii.ca)) == 403


def test_taxii2_client_reads_discovery_collections_objects_with_paging(taxii: Taxii) -> None:
    server = Server(taxii.url, user="centre", password=taxii.key, verify=taxii.ca)
    assert server.title == "SOC hand-over"
    root = server.default
    assert root is not None and MEDIA_TYPE in root.versions
    [collection] = root.collections
    assert collection.can_read and not collection.can_write
    pages = list(as_pages(collection.get_objects, per_request=4))
    objects = [o for page in pages for o in page.get("objects", [])]
    assert taxii.total == 14  # 11 from the incident report, 3 new sightings from the summary
    assert len(pages) == 4 and len(objects) == taxii.total
    assert len({o["id"] for o in objects}) == taxii.total
    assert {o["type"] for o in objects} == {"identity", "incident", "indicator", "sighting", "relationship"}
    later = collection.get_objects(added_after=taxii.summary_added)
    assert [o["type"] for o in later["objects"]] == ["sighting"] * 3
    manifest = list(as_pages(collection.get_manifest, per_request=10))
    assert sum(len(p["objects"]) for p in manifest) == taxii.total
    incident = next(o for o in objects if o["type"] == "incident")
    one = collection.get_object(incident["id"])
    assert one["objects"] == [incident]


def test_bearer_key_accept_header_and_bad_paging_token(taxii: Taxii) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=taxii.ca)) as client:
        headers = {"Authorization": f"Bearer {taxii.key}", "Accept": MEDIA_TYPE}
        collections = client.get(taxii.url + "soc/collections/", headers=headers)
        assert collections.status_code == 200
        assert collections.headers["content-type"].startswith("application/taxii+json")
        cid = collections.json()["collections"][0]["id"]
        assert client.get(taxii.url + "soc/collections/", headers={**headers, "Accept": "text/html"}).status_code == 406
        bad = client.get(taxii.url + f"soc/collections/{cid}/objects/", params={"next": "!!"}, headers=headers)
        assert bad.status_code == 400
        assert client.get(taxii.url + "soc/collections/nope/objects/", headers=headers).status_code == 404
        first = client.get(taxii.url + f"soc/collections/{cid}/objects/", params={"limit": 5}, headers=headers)
        assert first.json()["more"] is True and "X-TAXII-Date-Added-First" in first.headers
