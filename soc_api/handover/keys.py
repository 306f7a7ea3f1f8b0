"""Ed25519 site signing keys: generate, rotate, export the public key set.

A key directory holds ``keyring.json`` (every public key the site ever used, each with its
validity period) and ``private/<kid>.pem`` (0600). Rotation closes the current key's period
instead of deleting it, so packages signed before the rotation still verify with the old key
while a package dated after it and signed with the old key is refused. The centre keeps the
exported public key set (``export_public``) per site.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from soc_api.handover.b64 import b64d, b64e
from soc_common.ecs import iso, parse_ts, utc_now

KEYRING_FILE = "keyring.json"
PRIVATE_DIR = "private"
ENCRYPTION_KEY_FILE = "x25519.pem"


class KeyRingError(Exception):
    """A key directory or public key set that cannot be used; the message names the problem."""


def key_id(public: Ed25519PublicKey) -> str:
    """Stable id of a public key: the first 16 bytes of sha256 over its raw bytes, hex."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class PublicKeyRecord:
    kid: str
    public_key: str  # raw 32 bytes, base64url
    valid_from: datetime
    valid_until: datetime | None = None  # None = current key

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(b64d(self.public_key))

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": "Ed25519",
            "public_key": self.public_key,
            "valid_from": iso(self.valid_from),
            "valid_until": iso(self.valid_until) if self.valid_until else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicKeyRecord:
        until = data.get("valid_until")
        return cls(
            kid=str(data["kid"]),
            public_key=str(data["public_key"]),
            valid_from=parse_ts(data["valid_from"]),
            valid_until=parse_ts(until) if until else None,
        )


@dataclass(frozen=True)
class PublicKeySet:
    """The public keys of one party (a site, or the receiver), with their validity periods."""

    owner: str
    keys: tuple[PublicKeyRecord, ...]

    def for_signature(self, kid: str, at: datetime) -> Ed25519PublicKey:
        """The key ``kid`` if it was valid at ``at``; raises KeyRingError naming why not."""
        for record in self.keys:
            if record.kid == kid:
                if not record.covers(at):
                    raise KeyRingError(f"key {kid} of {self.owner} was not valid at {iso(at)}")
                return record.key()
        raise KeyRingError(f"unknown key {kid} for {self.owner}")

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "keys": [k.to_json() for k in self.keys]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicKeySet:
        try:
            return cls(str(data["owner"]), tuple(PublicKeyRecord.from_json(k) for k in data["keys"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyRingError(f"malformed public key set: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> PublicKeySet:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise KeyRingError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey


def _write_private(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


class KeyRing:
    """The site's key directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def _file(self) -> Path:
        return self.directory / KEYRING_FILE

    def exists(self) -> bool:
        return self._file.exists()

    def public_set(self) -> PublicKeySet:
        if not self.exists():
            raise KeyRingError(f"{self.directory}: no key ring (run 'soc handover keys generate')")
        return PublicKeySet.load(self._file)

    def _save(self, keys: PublicKeySet) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(keys.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self._file)

    def _new_key(self, now: datetime) -> PublicKeyRecord:
        private = Ed25519PrivateKey.generate()
        public = private.public_key()
        kid = key_id(public)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(self.directory / PRIVATE_DIR / f"{kid}.pem", pem)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKeyRecord(kid=kid, public_key=b64e(raw), valid_from=now)

    def generate(self, owner: str, now: datetime | None = None) -> PublicKeyRecord:
        """Create the first key; refuses to overwrite an existing ring (use :meth:`rotate`)."""
        if self.exists():
            raise KeyRingError(f"{self.directory}: a key ring already exists; rotate instead")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = self._new_key(now or utc_now())
        self._save(PublicKeySet(owner, (record,)))
        return record

    def rotate(self, now: datetime | None = None) -> tuple[PublicKeyRecord, PublicKeyRecord]:
        """Close the current key's period at ``now`` and start a new key; returns (old, new)."""
        at = now or utc_now()
        current = self.public_set()
        active = [k for k in current.keys if k.valid_until is None]
        if len(active) != 1:
            raise KeyRingError(f"{self.directory}: expected one current key, found {len(active)}")
        old = active[0]
        if at <= old.valid_from:
            raise KeyRingError("rotation time must be after the current key's start")
        closed = PublicKeyRecord(old.kid, old.public_key, old.valid_from, at)
        new = self._new_key(at)
        keys = (*(closed if k.kid == old.kid else k for k in current.keys), new)
        self._save(PublicKeySet(current.owner, keys))
        return closed, new

    def current(self) -> SigningKey:
        """The key to sign with now."""
        active = [k for k in self.public_set().keys if k.valid_until is None]
        if not active:
            raise KeyRingError(f"{self.directory}: no current key")
        kid = active[-1].kid
        path = self.directory / PRIVATE_DIR / f"{kid}.pem"
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise KeyRingError(f"{path}: {exc}") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyRingError(f"{path}: not an Ed25519 key")
        return SigningKey(kid, private)


def generate_encryption_key(path: Path) -> str:
    """Create an X25519 key (the receiver's, for encrypted packages); returns the public key b64url."""
    private = X25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64e(raw)


def load_encryption_key(path: Path) -> X25519PrivateKey:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"{path}: {exc}") from None
    if not isinstance(private, X25519PrivateKey):
        raise KeyRingError(f"{path}: not an X25519 key")
    return private
