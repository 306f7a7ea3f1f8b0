"""Ed25519 signatures over the RFC 8785 canonical form of a JSON document.

The signature sits in the document itself (``signature: {alg, kid, value}``) and covers every
other member, so a package, a manifest or a receipt is one self-contained file the centre can
verify with nothing but the signer's public key set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature

from soc_api.handover.b64 import b64d, b64e
from soc_api.handover.jcs import CanonicalError, canonicalize
from soc_api.handover.keys import KeyRingError, PublicKeySet, SigningKey
from soc_common.ecs import parse_ts

SIGNATURE_FIELD = "signature"
ALG = "Ed25519"


class SignatureError(Exception):
    """The document is unsigned, signed with an unknown or expired key, or altered."""


def signed_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical form of the document without its signature."""
    body = {k: v for k, v in document.items() if k != SIGNATURE_FIELD}
    return canonicalize(body)


def sign(document: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A copy of ``document`` with its signature."""
    value = key.private.sign(signed_bytes(document))
    return {**document, SIGNATURE_FIELD: {"alg": ALG, "kid": key.kid, "value": b64e(value)}}


def verify(document: dict[str, Any], keys: PublicKeySet, time_field: str) -> None:
    """Check the signature with the signer key that was valid at ``document[time_field]``."""
    sig = document.get(SIGNATURE_FIELD)
    if not isinstance(sig, dict) or sig.get("alg") != ALG:
        raise SignatureError("no Ed25519 signature")
    try:
        at: datetime = parse_ts(document[time_field])
        public = keys.for_signature(str(sig.get("kid")), at)
        public.verify(b64d(str(sig.get("value"))), signed_bytes(document))
    except KeyRingError as exc:
        raise SignatureError(str(exc)) from None
    except InvalidSignature:
        raise SignatureError("signature does not match the content (altered?)") from None
    except (KeyError, ValueError, TypeError, CanonicalError) as exc:
        raise SignatureError(f"cannot check signature: {exc}") from None
