"""Signed, expiring tokens (HMAC-SHA256) for bearer access and browser sessions, and CSRF tokens.

Format: ``base64url(payload_json) "." base64url(hmac)``. The payload carries the user id, the
kind (``access`` or ``session``), issue and expiry times and a random ``jti`` so a single token can
be revoked at logout. A separate key is derived per purpose, so a CSRF token can never pass as
a session and vice versa.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from soc_common.ecs import utc_now

TokenKind = Literal["access", "session"]


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(Exception):
    """The token is malformed, forged or expired (the message is safe to log, never the token)."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    kind: TokenKind
    jti: str
    issued_at: datetime
    expires_at: datetime


class TokenSigner:
    def __init__(self, secret: str) -> None:
        master = secret.encode()
        self._token_key = hmac.new(master, b"soc-api token v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(master, b"soc-api csrf v1", hashlib.sha256).digest()

    def issue(self, user_id: int, kind: TokenKind, lifetime: timedelta) -> tuple[str, TokenClaims]:
        now = utc_now()
        claims = TokenClaims(user_id, kind, secrets.token_hex(16), now, now + lifetime)
        payload = {
            "sub": user_id,
            "knd": kind,
            "jti": claims.jti,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        body = _b64e(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64e(hmac.new(self._token_key, body.encode(), hashlib.sha256).digest())
        return f"{body}.{sig}", claims

    def verify(self, token: str, kind: TokenKind, now: datetime | None = None) -> TokenClaims:
        if len(token) > 1024 or token.count(".") != 1:
            raise TokenError("malformed token")
        body, sig = token.split(".")
        expected = _b64e(hmac.new(self._token_key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            raise TokenError("bad signature")
        try:
            payload = json.loads(_b64d(body))
            claims = TokenClaims(
                user_id=int(payload["sub"]),
                kind=payload["knd"],
                jti=str(payload["jti"]),
                issued_at=datetime.fromtimestamp(int(payload["iat"]), tz=utc_now().tzinfo),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=utc_now().tzinfo),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("malformed payload") from exc
        if claims.kind != kind:
            raise TokenError("wrong token kind")
        if (now or utc_now()) >= claims.expires_at:
            raise TokenError("token expired")
        return claims

    def csrf_token(self) -> str:
        """A fresh double-submit CSRF value: random nonce plus its MAC, so it cannot be planted."""
        nonce = secrets.token_urlsafe(18)
        mac = _b64e(hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).digest())
        return f"{nonce}.{mac}"

    def csrf_valid(self, cookie_value: str | None, submitted: str | None) -> bool:
        if not cookie_value or not submitted or len(cookie_value) > 200:
            return False
        if not hmac.compare_digest(cookie_value, submitted):
            return False
        nonce, _, mac = cookie_value.partition(".")
        expected = _b64e(hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).digest())
        return hmac.compare_digest(mac, expected)
