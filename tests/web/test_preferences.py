"""Per-user language and time zone: stored on the account (migration 0006), chosen on the account
page, applied on every page before the cookie and Accept-Language; times shown in the user's zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import inspect, select

from soc_api.db.migrate import alembic_config, upgrade
from soc_api.db.models import AlertRow, AuditEntry, User
from soc_api.db.session import make_engine
from soc_api.web.i18n import accepted_language, pick_language
from tests.web.web_world import Web


def _user_columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("users")}
    finally:
        engine.dispose()


def test_migration_0006_adds_and_removes_the_preference_columns(db_url: str) -> None:
    upgrade(db_url, "0005")
    assert {"locale", "time_zone"}.isdisjoint(_user_columns(db_url))
    upgrade(db_url, "0006")
    assert {"locale", "time_zone"} <= _user_columns(db_url)
    cfg = alembic_config(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
    finally:
        engine.dispose()
    assert {"locale", "time_zone"}.isdisjoint(_user_columns(db_url))


def test_language_resolution_order() -> None:
    assert accepted_language("fr-FR, en-GB;q=0.8, vi;q=0.9") == "vi"
    assert accepted_language("en;q=0, vi;q=0") is None and accepted_language("x;q=bad") is None
    assert pick_language(None, None, "vi", accept="en-US,en;q=0.9") == "en"
    assert pick_language(None, "vi", "vi", accept="en") == "vi"  # cookie before the browser
    assert pick_language(None, "vi", "vi", stored="en", accept="vi") == "en"  # the account before all
    assert pick_language("vi", None, "vi", stored="en") == "vi"  # an explicit ?lang= for one page
    assert pick_language(None, None, "vi") == "vi"


def test_stored_preferences_follow_the_user_and_show_local_times(web: Web) -> None:
    web.sign_in("officer_hn")
    assert "Tổng quan" in web.client.get("/overview", headers={"accept-language": "vi"}).text
    form = {"locale": "en", "time_zone": "Europe/London", "csrf_token": web.csrf("/account")}
    r = web.client.post("/account/preferences", data=form, follow_redirects=False)
    assert r.status_code == 303
    with web.api.state.sessions.begin() as s:
        user = s.get(User, web.api.user_ids["officer_hn"])
        assert user is not None and (user.locale, user.time_zone) == ("en", "Europe/London")
    out = web.client.get(f"/api/v1/users/{web.api.user_ids['officer_hn']}", headers=web.api.headers("admin")).json()
    assert (out["locale"], out["time_zone"]) == ("en", "Europe/London")  # the users API shows them too
    web.client.cookies.delete("lang")  # a new browser: the account still decides
    page = web.client.get("/account", headers={"accept-language": "vi"}).text
    assert "Preferences saved." in page and "Europe/London" in page and "Tổng quan" not in page
    with web.api.state.sessions.begin() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.preferences")).one()
        assert entry.after == {"locale": "en", "time_zone": "Europe/London"}
        row = s.get(AlertRow, web.api.alert_ids["hn"])
        assert row is not None
        ts = row.timestamp
    # Times: the alert's stored UTC instant is shown in London time (the page is in English).
    alert = web.client.get(f"/alerts/{web.api.alert_ids['hn']}").text
    assert ts.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%d %H:%M:%S") in alert
    assert ts.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M:%S") not in alert
    # The header switch stores the language too; an unknown zone is refused, nothing changes.
    back = {"lang": "vi", "back": "/overview", "csrf_token": web.csrf("/account")}
    r = web.client.post("/account/language", data=back, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/overview"
    assert "Tổng quan" in web.client.get("/overview", headers={"accept-language": "en"}).text
    bad = {"locale": "vi", "time_zone": "Mars/Olympus", "csrf_token": web.csrf("/account")}
    web.client.post("/account/preferences", data=bad)
    with web.api.state.sessions.begin() as s:
        user = s.get(User, web.api.user_ids["officer_hn"])
        assert user is not None and user.time_zone == "Europe/London"


def test_anonymous_pages_follow_the_cookie_then_the_browser(web: Web) -> None:
    web.client.cookies.clear()
    assert "Sign in" in web.client.get("/login", headers={"accept-language": "en-US,en;q=0.9"}).text
    assert "Đăng nhập" in web.client.get("/login").text
    web.client.get("/login?lang=vi")
    assert "Đăng nhập" in web.client.get("/login", headers={"accept-language": "en"}).text


def test_preferences_need_the_csrf_token(web: Web) -> None:
    web.sign_in("officer_hn")
    r = web.client.post("/account/preferences", data={"locale": "en"}, follow_redirects=False)
    assert r.status_code == 403
