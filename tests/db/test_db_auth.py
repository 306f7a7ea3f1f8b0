"""Accounts: argon2 hashes, TOTP login, recovery codes, lock-out, API keys, signed tokens."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.models import AuditEntry, User
from soc_api.services import auth
from soc_api.services.tokens import TokenError, TokenSigner
from soc_common.ecs import utc_now

BOX = auth.SecretBox("x" * 40)
PASSWORD = "mật-khẩu-rất-dài-2025"


def _login(s: Session, password: str = PASSWORD, totp: str | None = None, **kw: object) -> auth.LoginResult:
    return auth.login(
        s, username="lan", password=password, totp_code=totp, box=BOX, lockout_threshold=3,
        lockout_duration=timedelta(minutes=15), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def sessions(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory.begin() as s:
        auth.create_user(s, username="lan", password=PASSWORD, role="officer", site_scope="hn")
    return session_factory


def test_password_is_argon2_and_checked(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        user = s.scalar(select(User))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in repr(user) and user.password_hash not in repr(user)
    with sessions.begin() as s:
        assert _login(s).outcome == "ok"
        assert _login(s, "wrong-password!").outcome == "bad_credentials"
    with pytest.raises(auth.AuthError):
        auth.hash_password("short")


def test_lockout_after_threshold_and_expiry(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        outcomes = [_login(s, "nope-nope-nope").outcome for _ in range(3)]
        assert outcomes == ["bad_credentials", "bad_credentials", "locked"]
        assert _login(s).outcome == "locked"  # the right password does not help while locked
        later = utc_now() + timedelta(minutes=16)
        assert _login(s, now=later).outcome == "ok"
        actions = list(
            s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("auth.%")).order_by(AuditEntry.seq))
        )
    assert actions.count("auth.login_failed") == 4 and actions[-1] == "auth.login"


def test_totp_enrolment_login_and_recovery(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        user = s.scalar(select(User))
        assert user is not None
        enrolment = auth.begin_totp_enrolment(user, BOX)
        assert enrolment.provisioning_uri.startswith("otpauth://totp/")
        assert enrolment.secret not in (user.totp_secret_enc or "")
        with pytest.raises(auth.AuthError):
            auth.confirm_totp(s, user, BOX, "000000" if pyotp.TOTP(enrolment.secret).now() != "000000" else "111111")
        codes = auth.confirm_totp(s, user, BOX, pyotp.TOTP(enrolment.secret).now())
        assert len(codes) == auth.RECOVERY_CODE_COUNT and user.totp_enabled
    totp = pyotp.TOTP(enrolment.secret)
    with sessions.begin() as s:
        assert _login(s).outcome == "totp_required"
        assert _login(s, totp="123").outcome == "bad_credentials"
        assert _login(s, totp=totp.now()).outcome == "ok"
        assert _login(s, totp=codes[0].upper()).outcome == "ok"  # recovery code, case-insensitive
        assert _login(s, totp=codes[0]).outcome == "bad_credentials"  # used up


def test_api_keys(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        new = auth.create_api_key(s, name="soar", scopes=["alerts:read"], site_scope="hn")
        expired = auth.create_api_key(s, name="old", scopes=["alerts:read"], expires_at=utc_now() - timedelta(1))
    with sessions.begin() as s:
        key = auth.check_api_key(s, new.secret)
        assert key is not None and key.scopes == ["alerts:read"]
        assert new.secret.split("_", 2)[2] not in key.secret_hash  # the whole random part (it may hold "_")
        assert auth.check_api_key(s, new.secret + "x") is None
        assert auth.check_api_key(s, expired.secret) is None
        assert auth.check_api_key(s, "garbage") is None
        key.revoked = True
    with sessions() as s:
        assert auth.check_api_key(s, new.secret) is None
    with sessions() as s, pytest.raises(ValueError, match="unknown scope"):
        auth.create_api_key(s, name="x", scopes=["root"])


def test_tokens_expire_and_resist_forgery() -> None:
    signer = TokenSigner("s" * 40)
    token, claims = signer.issue(7, "access", timedelta(minutes=5))
    assert signer.verify(token, "access").user_id == 7
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, "access", now=claims.expires_at)
    with pytest.raises(TokenError, match="kind"):
        signer.verify(token, "session")
    with pytest.raises(TokenError, match="signature"):
        TokenSigner("t" * 40).verify(token, "access")
    body, sig = token.split(".")
    with pytest.raises(TokenError):
        signer.verify(body[:-2] + "AA." + sig, "access")
    csrf = signer.csrf_token()
    assert signer.csrf_valid(csrf, csrf)
    assert not signer.csrf_valid("planted.value", "planted.value")
    assert not signer.csrf_valid(csrf, None)
