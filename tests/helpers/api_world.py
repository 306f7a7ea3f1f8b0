"""The API test world: users of every role on a small site tree, and how to call as them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from soc_api.config import ApiConfig
from soc_api.services.auth import hash_password
from soc_api.state import AppState

PASSWORD = "mật-khẩu-đủ-dài-2025"
# username -> (role, site scope)
USERS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "officer_hn": ("officer", "hn"),
    "officer_hcm": ("officer", "hcm"),
    "approver_hn": ("approver", "hn"),
    "auditor": ("auditor", None),
}


@dataclass
class Api:
    client: TestClient
    state: AppState
    alert_ids: dict[str, str] = field(default_factory=dict)  # site -> alert id
    user_ids: dict[str, int] = field(default_factory=dict)

    def token(self, username: str) -> str:
        token, _ = self.state.signer.issue(self.user_ids[username], "access", self.state.config.security.token_lifetime)
        return token

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


def make_config(db_url: str, tmp_path: Path, **security: object) -> ApiConfig:
    return ApiConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "database": {"url": db_url},
            "security": {"session_secret": "k" * 48, "lockout_threshold": 3, **security},
        }
    )


@functools.cache
def password_hash() -> str:
    """One real argon2 hash of PASSWORD per test run (hashing costs ~0.5 s on two cores)."""
    return hash_password(PASSWORD)


def seed_people(api: Api, *, sub_site: bool = False) -> None:
    """The two provinces (and Quận 1 under Hà Nội with ``sub_site``) and one user per entry of USERS."""
    from soc_api.db.models import Site, User

    with api.state.sessions.begin() as s:
        s.add_all([Site(code="hn", name="Hà Nội"), Site(code="hcm", name="TP. Hồ Chí Minh")])
        s.flush()
        if sub_site:
            s.add(Site(code="hn-q1", name="Quận 1 (HN)", parent_code="hn"))
            s.flush()
        for name, (role, site) in USERS.items():
            user = User(username=name, password_hash=password_hash(), role=role, site_scope=site, recovery_codes=[])
            s.add(user)
            s.flush()
            api.user_ids[name] = user.id
