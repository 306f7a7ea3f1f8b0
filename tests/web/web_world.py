"""The web test world: a signed-in browser-like client and the CSRF token of a page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests.helpers.api_world import PASSWORD, Api


@dataclass
class Web:
    api: Api
    dossier_id: int

    @property
    def client(self) -> TestClient:
        return self.api.client

    def sign_in(self, username: str) -> None:
        self.client.cookies.clear()
        page = self.client.get("/login")
        r = self.client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text

    def csrf(self, path: str = "/overview") -> str:
        return csrf_of(self.client.get(path).text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)
