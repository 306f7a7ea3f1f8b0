"""Unpadded base64url, the encoding of every binary field in packages, receipts and envelopes."""

from __future__ import annotations

import base64
import binascii


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode; raises ValueError (never a bare binascii error) on malformed input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"not base64url: {exc}") from None
