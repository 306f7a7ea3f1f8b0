"""The agents pages against a real collector: both languages, strict CSP, the token shown once,
revocation with confirmation, the agent's own policy layer, role refusals, collector down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soc_api.web import i18n
from tests.agents_admin.conftest import World
from tests.agents_admin.test_agents_api import enrolled
from tests.web.test_pages import _inline_code
from tests.web.web_world import Web, csrf_of


@pytest.fixture
def web(world: World) -> Web:
    return Web(world.api, 0)


def test_pages_render_in_both_languages(world: World, web: Web, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    web.sign_in("admin")
    i18n.MISSING.clear()
    for lang, words in (("vi", ("Tác tử", "Mã đăng ký tác tử", "được bảo vệ")), ("en", ("Agents", "Enrolment tokens"))):
        for path in ("/agents", f"/agents/{agent.agent_id}"):
            r = web.client.get(f"{path}?lang={lang}")
            assert r.status_code == 200, (path, r.text[:500])
            assert f'<html lang="{lang}">' in r.text and "pc-hn-01" in r.text
            csp = r.headers["content-security-policy"]
            assert "unsafe-inline" not in csp and "default-src 'none'" in csp
            assert _inline_code(r.text) == [], _inline_code(r.text)
        listing = web.client.get(f"/agents?lang={lang}").text
        assert all(w in listing for w in words), lang
    assert set() == i18n.MISSING, sorted(i18n.MISSING)
    detail = web.client.get(f"/agents/{agent.agent_id}?lang=en").text
    assert "Debian GNU/Linux" in detail and "10.1.2.3" in detail and 'name="confirm"' in detail


def test_filters(world: World, web: Web, tmp_path: Path) -> None:
    enrolled(world, tmp_path, "pc-hn-01", "hn")
    enrolled(world, tmp_path, "pc-hn-02", "hn", protection=False)
    web.sign_in("admin")
    table = lambda q: web.client.get(f"/agents?lang=en&{q}").text.split('id="agent-list"')[1]  # noqa: E731
    assert "pc-hn-02" in table("protection=off") and "pc-hn-01" not in table("protection=off")
    assert "pc-hn-01" not in table("site=hcm") and "No agents." in table("site=hcm")
    assert "pc-hn-01" in table("status=online") and "pc-hn-01" not in table("status=silent")


def test_token_is_shown_once_and_can_be_revoked(world: World, web: Web) -> None:
    web.sign_in("admin")
    page = web.client.get("/agents?lang=en").text
    r = web.client.post(
        "/agents/tokens",
        data={"site": "hn", "uses": "3", "ttl_hours": "2", "note": "đợt 1", "csrf_token": csrf_of(page)},
    )
    assert r.status_code == 200, r.text[:500]
    token = re.search(r'<code class="secret" id="new-token">([^<]+)</code>', r.text)
    assert token is not None
    token_id = token.group(1).split(".", 1)[0]
    listing = web.client.get("/agents?lang=en").text
    assert token_id in listing and token.group(1) not in listing
    r = web.client.post(
        f"/agents/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(listing)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert [t.revoked_at is not None for t in world.stack.server.registry.list_tokens()] == [True]
    no_csrf = web.client.post("/agents/tokens", data={"uses": "1"})
    assert no_csrf.status_code == 403


def test_revoke_needs_the_host_name_and_policy_form(world: World, web: Web, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    web.sign_in("admin")
    path = f"/agents/{agent.agent_id}"
    csrf = csrf_of(web.client.get(path).text)
    r = web.client.post(f"{path}/policy", data={"policy": '{"status_interval": 90}', "csrf_token": csrf},
                        follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    with agent.client() as c:
        assert c.get(f"{world.stack.url}/v1/policy").json()["policy"] == {"status_interval": 90}
    bad = web.client.post(f"{path}/policy", data={"policy": "[1]", "csrf_token": csrf}, follow_redirects=False)
    assert bad.status_code == 303 and world.stack.server.registry.get_agent(agent.agent_id) is not None
    wrong = web.client.post(f"{path}/revoke", data={"confirm": "pc-other", "csrf_token": csrf}, follow_redirects=False)
    assert wrong.status_code == 303
    assert world.stack.server.registry.get_agent(agent.agent_id).revoked_at is None  # type: ignore[union-attr]
    ok = web.client.post(f"{path}/revoke", data={"confirm": "PC-HN-01", "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    assert world.stack.server.registry.get_agent(agent.agent_id).revoked_at is not None  # type: ignore[union-attr]
    assert agent.ship([]).status_code == 403


def test_roles_on_pages(world: World, web: Web, tmp_path: Path) -> None:
    agent = enrolled(world, tmp_path, "pc-hn-01", "hn")
    web.sign_in("approver_hn")
    assert web.client.get("/agents").status_code == 403
    web.sign_in("officer_hcm")
    assert "pc-hn-01" not in web.client.get("/agents").text
    assert web.client.get(f"/agents/{agent.agent_id}").status_code == 404
    web.sign_in("officer_hn")
    page = web.client.get(f"/agents/{agent.agent_id}").text
    assert (
        "pc-hn-01" in page and 'name="confirm"' not in page and 'id="token-form"' not in web.client.get("/agents").text
    )
    r = web.client.post(f"/agents/{agent.agent_id}/revoke", data={"confirm": "pc-hn-01", "csrf_token": csrf_of(page)})
    assert r.status_code == 403
    assert world.stack.server.registry.get_agent(agent.agent_id).revoked_at is None  # type: ignore[union-attr]


def test_collector_down_page(world: World, web: Web) -> None:
    web.sign_in("admin")
    world.stack.server.stop()
    r = web.client.get("/agents?lang=en")
    assert r.status_code == 503 and "The collector cannot be reached" in r.text
