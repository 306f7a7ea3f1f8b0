"""Every page in both languages for every role: status, no untranslated text, strict CSP and no
inline script or style; CSRF on every form; filters that survive the URL."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from soc_api.web import i18n
from tests.web.web_world import Web

PAGES = ["/overview", "/alerts", "/alerts/{alert}", "/systems", "/systems/qlvb-hn", "/dossiers/{dossier}",
         "/hunt", "/audit", "/admin/users", "/admin/api-keys", "/account", "/admin/suppressions",
         "/admin/detectors", "/admin/handover", "/kpi", "/drills/plans"]  # fmt: skip
FORBIDDEN: dict[str, set[str]] = {
    "admin": set(),
    "officer_hn": {"/audit", "/admin/users", "/admin/api-keys"},
    "approver_hn": {"/hunt", "/audit", "/admin/users", "/admin/api-keys", "/admin/handover"},
    "auditor": {"/hunt", "/admin/users", "/admin/api-keys"},
}


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements/attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        self.problems += [f"{tag}[{k}]" for k in names if k == "style" or k.startswith("on")]
        self.problems += [
            f"{tag}[{k}]=javascript:" for k, v in attrs if v and v.strip().lower().startswith("javascript:")
        ]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script body")


def _inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.problems


@pytest.mark.parametrize("user", sorted(FORBIDDEN))
def test_every_page_renders_in_both_languages_for_each_role(web: Web, user: str) -> None:
    web.sign_in(user)
    i18n.MISSING.clear()
    for lang in ("vi", "en"):
        for template in PAGES:
            path = template.format(alert=web.api.alert_ids["hn"], dossier=web.dossier_id)
            r = web.client.get(f"{path}?lang={lang}")
            expected = 403 if template in FORBIDDEN[user] else 200
            assert r.status_code == expected, (user, path, r.status_code)
            assert f'<html lang="{lang}">' in r.text
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
            assert r.headers["cache-control"] == "no-store"
            assert _inline_code(r.text) == [], (path, _inline_code(r.text))
            assert "http://" not in r.text and "https://" not in r.text.replace(
                'xmlns="http://www.w3.org/2000/svg"', ""
            )
    assert set() == i18n.MISSING, f"untranslated: {sorted(i18n.MISSING)}"


def test_vietnamese_first_with_diacritics_and_english_on_request(web: Web) -> None:
    web.sign_in("officer_hn")
    r = web.client.get("/overview")
    assert "Tổng quan" in r.text and "Cảnh báo" in r.text and "Hệ thống thông tin" in r.text
    assert "Cán bộ giám sát" in r.text  # the role, in Vietnamese
    r = web.client.get("/overview?lang=en")
    assert "Overview" in r.text and "Security officer" in r.text and "Tổng quan" not in r.text
    assert "Overview" in web.client.get("/overview").text  # the choice is remembered


def test_pages_need_login_and_come_back_after_it(web: Web) -> None:
    r = web.client.get("/systems?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/systems%3Fx%3D1"
    page = web.client.get("/login?next=/systems")
    assert 'name="next" value="/systems"' in page.text
    evil = web.client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/alerts"' in evil.text


@pytest.mark.parametrize(
    "path,data",
    [
        ("/alerts/{alert}/action", {"action": "acknowledge"}),
        ("/alerts/bulk", {"action": "acknowledge", "ids": "{alert}"}),
        ("/alerts/{alert}/comment", {"body": "x"}),
        ("/admin/users", {"username": "mallory", "password": "p" * 16, "role": "admin"}),
        ("/account/totp", {}),
        ("/dossiers/{dossier}/submit", {}),
        ("/admin/api-keys", {"name": "k", "scopes": "alerts:read"}),
    ],
)
def test_form_posts_without_the_csrf_token_are_refused(web: Web, path: str, data: dict[str, str]) -> None:
    web.sign_in("admin")
    alert = web.api.alert_ids["hn"]
    url = path.format(alert=alert, dossier=web.dossier_id)
    body = {k: v.format(alert=alert) for k, v in data.items()}
    r = web.client.post(url, data=body, follow_redirects=False)
    assert r.status_code == 403
    r = web.client.post(url, data={**body, "csrf_token": "forged.token"}, follow_redirects=False)
    assert r.status_code == 403
    assert web.client.get(f"/alerts/{alert}").text.count("alert.acknowledge") == 0


def test_filters_round_trip_through_the_url(web: Web) -> None:
    web.sign_in("admin")
    r = web.client.get("/alerts?status=new&severity=critical&host=pc-hcm&sort=-severity&start=2025-01-01")
    assert r.status_code == 200
    html = r.text
    assert 'value="critical" checked' in html and 'value="new" checked' in html and 'value="high" checked' not in html
    assert 'name="host" value="pc-hcm"' in html and 'value="-severity" selected' in html
    assert 'name="start" value="2025-01-01"' in html
    assert "pc-hcm" in html and "pc-hn<" not in html
    query = "status=new&amp;severity=critical&amp;host=pc-hcm&amp;sort=-severity&amp;start=2025-01-01"
    back = f'name="back" value="/alerts?{query}"'
    assert back in html
    assert "pc-hcm" not in web.client.get("/alerts?severity=low").text
    assert web.client.get("/alerts?status=bogus&cursor=garbage&sort=nope").status_code == 200  # ignored, not a 500
