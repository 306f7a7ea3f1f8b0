"""Server-rendered pages: Vietnamese first, English on request, local time, CSRF, strict headers."""

from __future__ import annotations

import re

from tests.helpers.api_world import PASSWORD, Api


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "login form has no CSRF field"
    return match.group(1)


def _sign_in(api: Api, username: str = "officer_hn") -> None:
    page = api.client.get("/login")
    r = api.client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/alerts"


def test_root_redirects_and_alerts_need_login(api: Api) -> None:
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    r = api.client.get("/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_login_page_vietnamese_by_default_english_on_request(api: Api) -> None:
    r = api.client.get("/login")
    assert r.status_code == 200 and '<html lang="vi">' in r.text
    assert "Đăng nhập" in r.text and "Mật khẩu" in r.text
    r = api.client.get("/login?lang=en")
    assert '<html lang="en">' in r.text and "Sign in" in r.text and "Password" in r.text
    assert api.client.cookies.get("lang") == "en"
    assert "Sign in" in api.client.get("/login").text  # remembered by the cookie


def test_security_headers(api: Api) -> None:
    r = api.client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    css = api.client.get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert "http" not in css.text  # no remote resources


def test_login_form_needs_csrf(api: Api) -> None:
    api.client.get("/login")
    r = api.client.post("/login", data={"username": "officer_hn", "password": PASSWORD, "csrf_token": "forged.token"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")


def test_wrong_password_rerenders_localised_error(api: Api) -> None:
    page = api.client.get("/login")
    r = api.client.post(
        "/login",
        data={"username": "officer_hn", "password": "sai-mat-khau!!", "csrf_token": _csrf(page.text)},
    )
    assert r.status_code == 401 and "Sai tên đăng nhập" in r.text


def test_alerts_page_lists_scoped_alerts_in_local_time(api: Api) -> None:
    _sign_in(api)
    r = api.client.get("/alerts")
    assert r.status_code == 200
    assert "pc-hn" in r.text and "pc-hcm" not in r.text  # officer_hn sees only hn and below
    # make_alert(1) is at 2025-03-01 08:01 UTC = 15:01 in Asia/Ho_Chi_Minh
    assert "01/03/2025 15:01:00" in r.text and "Cao" in r.text and "Asia/Ho_Chi_Minh" in r.text
    r = api.client.get("/alerts?lang=en")
    assert "2025-03-01 15:01:00" in r.text and "High" in r.text
    assert "pc-hn" not in api.client.get("/alerts?status=closed").text


def test_logout_form_revokes_the_session(api: Api) -> None:
    _sign_in(api)
    page = api.client.get("/alerts")
    r = api.client.post("/logout", data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert api.client.get("/alerts", follow_redirects=False).headers["location"] == "/login"
