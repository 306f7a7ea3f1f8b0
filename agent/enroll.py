"""Enrolment: trade a one-time token for a client certificate, and pin the collector's CA.

Trust on first use, done carefully. The CA is fetched first *without* the token (``GET /v1/ca``)
over TLS that cannot be verified yet. The operator vouches for it by ``--ca-file`` (the CA itself),
``--ca-fingerprint`` (printed by ``soc collector ca fingerprint``) or by confirming the printed
fingerprint. Only then is the token sent, over TLS verified against that CA, so a man in the middle
can neither steal the token nor get his own CA pinned. Everything lands in ``data_dir/credentials``
(private key 0600); later connections trust this CA only.

The token is never sent over TLS that is not verified against a CA the operator vouched for.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soc_common import __version__

Confirm = Callable[[str], bool]


class EnrollError(Exception):
    """Enrolment failed; the message says why, for the operator."""


@dataclass(frozen=True)
class Credentials:
    """The files an enrolled agent authenticates with."""

    directory: Path
    agent_id: str
    collector_url: str

    @property
    def key_path(self) -> Path:
        return self.directory / "agent.key"

    @property
    def cert_path(self) -> Path:
        return self.directory / "agent.crt"

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @classmethod
    def load(cls, data_dir: Path) -> Credentials | None:
        """The credentials if this agent is enrolled, else None."""
        directory = data_dir / "credentials"
        try:
            meta = json.loads((directory / "agent.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        creds = cls(directory, str(meta["agent_id"]), str(meta.get("collector_url", "")))
        if not (creds.key_path.exists() and creds.cert_path.exists() and creds.ca_path.exists()):
            return None
        return creds

    def ssl_context(self) -> ssl.SSLContext:
        """mTLS: our certificate, and the pinned CA as the only trust anchor."""
        return client_context(self.ca_path, self.cert_path, self.key_path)


def client_context(ca_path: Path | None, cert_path: Path | None = None, key_path: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_path is None:  # only for fetching the CA before it can be trusted
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(ca_path))
    if cert_path is not None and key_path is not None:
        ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def normalise_fingerprint(value: str) -> str:
    """Accept ``SHA256:AB:CD...``, ``ab cd ...`` or plain hex; return lower-case hex."""
    text = value.strip().lower()
    text = text.removeprefix("sha256:").removeprefix("sha256 ")
    return "".join(c for c in text if c in "0123456789abcdef")


def fingerprint_of(pem: str | bytes) -> str:
    """SHA-256 of a PEM certificate's DER, lower-case hex (what the collector prints)."""
    data = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificate(data).fingerprint(hashes.SHA256()).hex()


def format_fingerprint(fp: str) -> str:
    return ":".join(fp[i : i + 2] for i in range(0, len(fp), 2)).upper()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _new_key_and_csr(hostname: str) -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "agent")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM).decode()


class _Endpoint:
    """One HTTPS request at a time to the collector, for enrolment only."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise EnrollError(f"collector URL must be https://host[:port]: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 8443
        self.timeout = timeout

    def request(
        self, ctx: ssl.SSLContext, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes, bytes | None]:
        """(status, body, DER of the server certificate)."""
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            conn.request(method, path, body=payload, headers=headers)
            peer = conn.sock.getpeercert(binary_form=True) if isinstance(conn.sock, ssl.SSLSocket) else None
            response = conn.getresponse()
            return response.status, response.read(), peer
        except ssl.SSLCertVerificationError as exc:
            raise EnrollError(f"the collector's certificate does not match the pinned CA: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise EnrollError(f"cannot reach the collector at {self.host}:{self.port}: {exc}") from None
        finally:
            conn.close()


def _vouch_for(ca_pem: str, expected_fp: str | None, confirm: Confirm | None) -> None:
    actual = fingerprint_of(ca_pem)
    if expected_fp is not None:
        if normalise_fingerprint(expected_fp) != actual:
            raise EnrollError(
                f"the collector's CA fingerprint {format_fingerprint(actual)} does not match the expected "
                f"{format_fingerprint(normalise_fingerprint(expected_fp))}; refusing to enrol"
            )
        return
    if confirm is None or not confirm(format_fingerprint(actual)):
        raise EnrollError(
            f"the collector's CA fingerprint is SHA256 {format_fingerprint(actual)}; compare it with "
            "'soc collector ca fingerprint' on the collector and pass --ca-fingerprint or --yes"
        )


def enroll(
    collector_url: str,
    token: str,
    data_dir: Path,
    *,
    ca_fingerprint: str | None = None,
    ca_file: Path | None = None,
    confirm: Confirm | None = None,
    hostname: str | None = None,
    timeout: float = 30.0,
) -> Credentials:
    """Enrol this host; return the stored credentials. Raises EnrollError (nothing is half-written)."""
    endpoint = _Endpoint(collector_url.rstrip("/"), timeout)
    directory = data_dir / "credentials"
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    hostname = hostname or socket.gethostname()
    key_pem, csr_pem = _new_key_and_csr(hostname)
    request = {
        "token": token,
        "hostname": hostname,
        "csr": csr_pem,
        "os": platform.system().lower(),
        "agent_version": __version__,
    }

    ca_pem: str | None = None
    if ca_file is not None:
        try:
            ca_pem = ca_file.read_text(encoding="utf-8")
            ca_fingerprint_of_file = fingerprint_of(ca_pem)
        except (OSError, ValueError) as exc:
            raise EnrollError(f"{ca_file}: not a PEM CA certificate: {exc}") from None
        if ca_fingerprint is not None and normalise_fingerprint(ca_fingerprint) != ca_fingerprint_of_file:
            raise EnrollError(f"{ca_file}: its fingerprint does not match --ca-fingerprint")
    else:
        status, body, _ = endpoint.request(client_context(None), "GET", "/v1/ca")
        if status != 200:
            raise EnrollError(f"the collector did not publish its CA at /v1/ca (HTTP {status}); pass --ca-file")
        ca_pem = _ca_from(body)
        _vouch_for(ca_pem, ca_fingerprint, confirm)

    pending_ca = directory / "ca.crt.pending"
    pending_ca.write_text(ca_pem, encoding="utf-8")
    try:
        status, body, _ = endpoint.request(client_context(pending_ca), "POST", "/v1/enroll", request)
    finally:
        pending_ca.unlink(missing_ok=True)
    answer = _enrol_answer(status, body)

    cert_pem = str(answer.get("certificate", ""))
    agent_id = str(answer.get("agent_id", ""))
    if not agent_id or "BEGIN CERTIFICATE" not in cert_pem:
        raise EnrollError("the collector's answer has no agent_id or certificate")
    _check_issued_by(x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER), ca_pem)

    _write_private(directory / "agent.key", key_pem)
    (directory / "agent.crt").write_text(cert_pem, encoding="utf-8")
    (directory / "ca.crt").write_text(ca_pem, encoding="utf-8")
    if isinstance(answer.get("policy"), dict):
        (data_dir / "policy.json").write_text(
            json.dumps({"version": None, "policy": answer["policy"]}), encoding="utf-8"
        )
    meta = {
        "agent_id": agent_id,
        "collector_url": collector_url.rstrip("/"),
        "ca_fingerprint": fingerprint_of(ca_pem),
        "enrolled_at": datetime.now(UTC).isoformat(),
        "hostname": hostname,
    }
    (directory / "agent.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    _match_owner(data_dir, [directory, *directory.iterdir(), data_dir / "policy.json"])
    creds = Credentials.load(data_dir)
    assert creds is not None
    return creds


def _match_owner(data_dir: Path, paths: list[Path]) -> None:
    """Run as root for a service user: hand the new files to whoever owns the data folder."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    owner = data_dir.stat()
    if owner.st_uid == 0:
        return
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, owner.st_uid, owner.st_gid)


def _ca_from(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            text = str(json.loads(text).get("ca", ""))
    if "BEGIN CERTIFICATE" not in text:
        raise EnrollError("the collector's /v1/ca answer is not a PEM certificate")
    return text


def _enrol_answer(status: int, body: bytes) -> dict[str, Any]:
    if status == 401:
        raise EnrollError("the collector refused the enrolment token (unknown, expired or used up)")
    if status != 200:
        raise EnrollError(f"enrolment failed: HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise EnrollError("the collector's enrolment answer is not JSON") from None
    if not isinstance(answer, dict):
        raise EnrollError("the collector's enrolment answer is not an object")
    return answer


def _check_issued_by(der: bytes | None, ca_pem: str) -> None:
    """The certificate (DER) must be signed by the CA we are about to pin."""
    if der is None:
        raise EnrollError("no server certificate was seen")
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        x509.load_der_x509_certificate(der).verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrollError(f"certificate not issued by the collector's CA: {exc}") from None
