"""Accounts: argon2 passwords, TOTP second factor, recovery codes, lock-out, API keys.

TOTP secrets are stored encrypted (Fernet, key derived from the session secret), so a database
dump alone does not hand over second factors. Recovery codes and API-key secrets are 128+ bit
random values, so a plain sha256 of them is as strong as a slow hash and lets a key be checked on
every request cheaply.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.db.models import ROLES, ApiKey, User
from soc_api.services import audit
from soc_api.services.principal import validate_scopes
from soc_common.ecs import utc_now

ISSUER = "SOC"
RECOVERY_CODE_COUNT = 10
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
API_KEY_PREFIX = "soc"

_hasher = PasswordHasher()
# Compared against when the user does not exist, so timing does not reveal valid usernames.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(Exception):
    pass


def hash_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(f"password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class SecretBox:
    """Encrypts small secrets (TOTP seeds) at rest with a key derived from the session secret."""

    def __init__(self, master_secret: str) -> None:
        key = hmac.new(master_secret.encode(), b"soc-api totp-at-rest v1", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise AuthError("stored second factor cannot be decrypted (session secret changed?)") from exc


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    site_scope: str | None = None,
    display_name: str = "",
    email: str | None = None,
    actor: str = "system",
) -> User:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AuthError("username: 1-64 letters, digits, '.', '-' or '_'")
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None:
        raise AuthError(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        site_scope=site_scope,
        display_name=display_name or username,
        email=email,
        recovery_codes=[],
    )
    session.add(user)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=str(user.id),
        after={"username": username, "role": role, "site_scope": site_scope},
    )
    return user


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str  # shown once to the user (or as a QR code of the URI)
    provisioning_uri: str


def begin_totp_enrolment(user: User, box: SecretBox) -> TotpEnrolment:
    """Store a new (not yet enabled) TOTP secret; :func:`confirm_totp` enables it."""
    secret = pyotp.random_base32()
    user.totp_secret_enc = box.seal(secret)
    user.totp_enabled = False
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return TotpEnrolment(secret, uri)


def _totp_ok(user: User, box: SecretBox, code: str, at: datetime | None = None) -> bool:
    if not user.totp_secret_enc or not code.isdecimal() or len(code) != 6:
        return False
    totp = pyotp.TOTP(box.open(user.totp_secret_enc))
    return bool(totp.verify(code, for_time=at or utc_now(), valid_window=1))


def confirm_totp(session: Session, user: User, box: SecretBox, code: str) -> list[str]:
    """Enable TOTP once the user proves they hold it; returns fresh recovery codes (shown once)."""
    if not _totp_ok(user, box, code):
        raise AuthError("wrong TOTP code")
    user.totp_enabled = True
    codes = [secrets.token_hex(5) + "-" + secrets.token_hex(5) for _ in range(RECOVERY_CODE_COUNT)]
    user.recovery_codes = [_recovery_digest(c) for c in codes]
    audit.append(session, actor=user.username, action="user.totp_enable", object_type="user", object_id=str(user.id))
    return codes


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _recovery_digest(code: str) -> str:
    """Recovery codes are typed by people: ignore case and surrounding spaces."""
    return _sha256(code.strip().lower())


def _use_recovery_code(user: User, code: str) -> bool:
    digest = _recovery_digest(code)
    remaining = list(user.recovery_codes or [])
    for stored in remaining:
        if hmac.compare_digest(stored, digest):
            remaining.remove(stored)
            user.recovery_codes = remaining
            return True
    return False


LoginOutcome = Literal["ok", "bad_credentials", "locked", "totp_required", "inactive"]


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None


def login(
    session: Session,
    *,
    username: str,
    password: str,
    totp_code: str | None,
    box: SecretBox,
    lockout_threshold: int,
    lockout_duration: timedelta,
    source_ip: str | None = None,
    now: datetime | None = None,
) -> LoginResult:
    """Check credentials and update the lock-out counters; every outcome is audited.

    A locked account is refused before the password is checked, so guessing cannot continue
    during the lock. The caller commits the session (the counters must persist on failure too).
    """
    now = now or utc_now()
    user = session.scalar(select(User).where(func.lower(User.username) == username.lower()[:64]))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        audit.append(
            session,
            actor=username[:64] or "?",
            action="auth.login_failed",
            object_type="user",
            source_ip=source_ip,
            after={"reason": "unknown_user"},
        )
        return LoginResult("bad_credentials")

    def record(action: str, reason: str) -> None:
        audit.append(
            session,
            actor=user.username,
            action=action,
            object_type="user",
            object_id=str(user.id),
            source_ip=source_ip,
            after={"reason": reason} if reason else None,
        )

    if not user.is_active:
        record("auth.login_failed", "inactive")
        return LoginResult("inactive")
    if user.locked_until is not None and user.locked_until > now:
        record("auth.login_failed", "locked")
        return LoginResult("locked")
    ok = verify_password(user.password_hash, password)
    if ok and user.totp_enabled:
        if not totp_code:
            record("auth.login_failed", "totp_required")
            return LoginResult("totp_required", user)
        ok = _totp_ok(user, box, totp_code, now) or _use_recovery_code(user, totp_code)
    if not ok:
        user.failed_attempts = (user.failed_attempts or 0) + 1
        reason = "bad_password_or_totp"
        if user.failed_attempts >= lockout_threshold:
            user.locked_until = now + lockout_duration
            user.failed_attempts = 0
            reason = "locked_out"
        record("auth.login_failed", reason)
        return LoginResult("locked" if reason == "locked_out" else "bad_credentials")
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login_at = now
    record("auth.login", "")
    return LoginResult("ok", user)


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the full key, shown once


def create_api_key(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    site_scope: str | None = None,
    expires_at: datetime | None = None,
    actor: str = "system",
) -> NewApiKey:
    scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        name=name[:100],
        prefix=prefix,
        secret_hash=_sha256(secret),
        scopes=scopes,
        site_scope=site_scope,
        expires_at=expires_at,
        created_by=actor,
    )
    session.add(key)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="apikey.create",
        object_type="api_key",
        object_id=str(key.id),
        after={"name": key.name, "prefix": prefix, "scopes": scopes, "site_scope": site_scope},
    )
    return NewApiKey(key, f"{API_KEY_PREFIX}_{prefix}_{secret}")


def check_api_key(session: Session, presented: str, now: datetime | None = None) -> ApiKey | None:
    """The active key matching ``presented`` (``soc_<prefix>_<secret>``), or None."""
    if len(presented) > 200:
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked or not hmac.compare_digest(key.secret_hash, _sha256(parts[2])):
        return None
    if key.expires_at is not None and key.expires_at <= (now or utc_now()):
        return None
    return key
