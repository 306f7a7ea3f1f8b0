"""Optional encryption of a signed package to the receiver's X25519 key (ECIES style).

Envelope ``soc-handover-encrypted/1.0``: a fresh ephemeral X25519 key per package; the shared
secret goes through HKDF-SHA256 (salt = ephemeral public || recipient public, info = the algorithm
name) to a 256-bit AES-GCM key; the header members are the associated data, so swapping the
recipient or the ephemeral key is detected. Sign first, then encrypt: the centre decrypts and still
holds a package signed by the site.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from soc_api.handover.b64 import b64d, b64e
from soc_api.handover.jcs import canonicalize

ENVELOPE_FORMAT = "soc-handover-encrypted/1.0"
ALG = "X25519-HKDF-SHA256-A256GCM"


class EnvelopeError(Exception):
    """Not an envelope, for another recipient, or altered: the message says which."""


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient, info=ALG.encode()).derive(shared)


def is_envelope(document: Any) -> bool:
    return isinstance(document, dict) and document.get("format") == ENVELOPE_FORMAT


def encrypt(plaintext: bytes, recipient_public: bytes) -> dict[str, Any]:
    recipient = X25519PublicKey.from_public_bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    epk = _raw(ephemeral.public_key())
    header = {"format": ENVELOPE_FORMAT, "alg": ALG, "epk": b64e(epk), "rpk": b64e(recipient_public)}
    nonce = os.urandom(12)
    key = _key(ephemeral.exchange(recipient), epk, recipient_public)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, canonicalize(header))
    return {**header, "nonce": b64e(nonce), "ciphertext": b64e(ciphertext)}


def decrypt(envelope: dict[str, Any], private: X25519PrivateKey) -> bytes:
    if not is_envelope(envelope) or envelope.get("alg") != ALG:
        raise EnvelopeError("not a soc-handover-encrypted/1.0 envelope")
    mine = _raw(private.public_key())
    try:
        header = {k: envelope[k] for k in ("format", "alg", "epk", "rpk")}
        if b64d(str(header["rpk"])) != mine:
            raise EnvelopeError("envelope is for another recipient key")
        epk = b64d(str(header["epk"]))
        shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
        key = _key(shared, epk, mine)
        return AESGCM(key).decrypt(
            b64d(str(envelope["nonce"])), b64d(str(envelope["ciphertext"])), canonicalize(header)
        )
    except InvalidTag:
        raise EnvelopeError("decryption failed: wrong key or altered envelope") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise EnvelopeError(f"malformed envelope: {exc}") from None
