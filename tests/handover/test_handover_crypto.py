"""Canonical JSON, signatures, key rotation and envelope encryption."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from soc_api.handover.b64 import b64d
from soc_api.handover.envelope import EnvelopeError, decrypt, encrypt
from soc_api.handover.jcs import CanonicalError, canonicalize
from soc_api.handover.keys import KeyRing, KeyRingError, generate_encryption_key, load_encryption_key
from soc_api.handover.signing import SignatureError, sign, verify
from soc_common.ecs import iso, utc_now

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_jcs_rfc8785_number_and_string_examples() -> None:
    # RFC 8785 section 3.2.3 example (numbers and strings), expected output from the RFC.
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value).decode("utf-8") == expected


def test_jcs_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3 sorting example: keys compare as UTF-16, not as code points.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonicalize(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1: "x"}, object()])
def test_jcs_refuses_values_without_json_form(bad: object) -> None:
    with pytest.raises(CanonicalError):
        canonicalize({"v": bad})


def test_sign_verify_and_one_byte_tamper(ring: KeyRing) -> None:
    created = iso(utc_now())
    doc = sign({"format": "x", "created": created, "payload": {"n": 1, "s": "Hà Nội"}}, ring.current())
    verify(doc, ring.public_set(), "created")
    altered = json.loads(json.dumps(doc, ensure_ascii=False).replace("Hà Nội", "Hà Nộj"))
    with pytest.raises(SignatureError, match="altered"):
        verify(altered, ring.public_set(), "created")
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    with pytest.raises(SignatureError, match="no Ed25519"):
        verify(unsigned, ring.public_set(), "created")


def test_rotation_old_packages_verify_with_old_key_new_with_new(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "k")
    first = ring.generate("hn", now=T0)
    before = sign({"created": "2026-01-05T00:00:00Z", "n": 1}, ring.current())
    old, new = ring.rotate(now=T0 + timedelta(days=10))
    assert old.kid == first.kid and old.valid_until == T0 + timedelta(days=10)
    after = sign({"created": "2026-01-20T00:00:00Z", "n": 2}, ring.current())
    keys = ring.public_set()
    verify(before, keys, "created")
    verify(after, keys, "created")
    assert before["signature"]["kid"] == old.kid and after["signature"]["kid"] == new.kid
    # The old key signing a package dated after the rotation is refused (a stolen old key).
    forged = {**before, "created": "2026-01-20T00:00:00Z"}
    forged = sign({k: v for k, v in forged.items() if k != "signature"}, _old_signing_key(ring, old.kid))
    with pytest.raises(SignatureError, match="not valid"):
        verify(forged, keys, "created")
    with pytest.raises(KeyRingError):
        ring.generate("hn")


def _old_signing_key(ring: KeyRing, kid: str):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    from soc_api.handover.keys import SigningKey

    pem = (ring.directory / "private" / f"{kid}.pem").read_bytes()
    return SigningKey(kid, serialization.load_pem_private_key(pem, password=None))  # type: ignore[arg-type]


def test_private_keys_are_owner_only(ring: KeyRing) -> None:
    for pem in (ring.directory / "private").iterdir():
        assert pem.stat().st_mode & 0o077 == 0


def test_encryption_round_trip_and_wrong_key_refused(tmp_path: Path) -> None:
    public = generate_encryption_key(tmp_path / "x25519.pem")
    private = load_encryption_key(tmp_path / "x25519.pem")
    plaintext = canonicalize({"payload": "bí mật", "n": 7})
    envelope = encrypt(plaintext, b64d(public))
    assert b"payload" not in json.dumps(envelope).encode()
    assert decrypt(envelope, private) == plaintext
    with pytest.raises(EnvelopeError, match="another recipient"):
        decrypt(envelope, X25519PrivateKey.generate())
    # Same recipient, but the ciphertext or the header altered: refused.
    flipped = dict(
        envelope,
        ciphertext=envelope["ciphertext"][:-2]
        + ("A" if envelope["ciphertext"][-2] != "A" else "B")
        + envelope["ciphertext"][-1],
    )
    with pytest.raises(EnvelopeError):
        decrypt(flipped, private)
    with pytest.raises(EnvelopeError):
        decrypt({"format": "nope"}, private)
