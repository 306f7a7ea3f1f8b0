"""The collector's own certificate authority.

Agents pin this CA at enrolment and present a client certificate it issued (CN = agent id) on every
later request, so the collector identifies agents by cryptography rather than by anything in the
request body. Keys are EC P-256, written 0600; the CA lives for 20 years, issued certificates less.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 20 * 365
SERVER_DAYS = 825


class CSRError(ValueError):
    """A certificate signing request that cannot be signed (bad PEM, bad signature, weak key)."""


@dataclass(frozen=True)
class IssuedCert:
    pem: str
    serial: str  # hex, lower case
    fingerprint: str  # SHA-256 of the DER, hex
    not_after: dt.datetime


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CertificateAuthority:
    """Load or create the CA under ``directory`` (``ca.crt`` + ``ca.key``) and issue certificates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cert_path = directory / "ca.crt"
        self.key_path = directory / "ca.key"
        self._lock = threading.Lock()
        if not self.cert_path.exists():
            self._create()
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.key_path}: expected an EC private key")
        self._key = key

    @classmethod
    def load_existing(cls, directory: Path) -> CertificateAuthority | None:
        """The CA if it was already created (read-only commands must not create one)."""
        return cls(directory) if (directory / "ca.crt").exists() else None

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SOC platform"),
                x509.NameAttribute(NameOID.COMMON_NAME, "SOC collector CA"),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        _write_private(self.key_path, _key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    def _builder(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey | object, days: int
    ) -> x509.CertificateBuilder:
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )

    def _sign(self, builder: x509.CertificateBuilder) -> IssuedCert:
        with self._lock:
            cert = builder.sign(self._key, hashes.SHA256())
        return IssuedCert(
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            serial=format(cert.serial_number, "x"),
            fingerprint=fingerprint(cert),
            not_after=cert.not_valid_after_utc,
        )

    def issue_client(self, csr_pem: str, agent_id: str, days: int) -> IssuedCert:
        """Sign an agent's CSR. The subject is ours (CN = agent id), whatever the CSR asked for."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except (ValueError, TypeError) as exc:
            raise CSRError(f"not a PEM certificate request: {exc}") from None
        if not csr.is_signature_valid:
            raise CSRError("the certificate request signature is invalid")
        public_key = csr.public_key()
        key_size = getattr(public_key, "key_size", 0)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if key_size < 256:
                raise CSRError("EC keys must be at least 256 bits")
        elif key_size < 2048:
            raise CSRError("only EC (>=256 bit) or RSA (>=2048 bit) keys are accepted")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)])
        builder = self._builder(subject, public_key, days).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        return self._sign(builder)

    def ensure_server_cert(self, directory: Path, names: list[str]) -> tuple[Path, Path]:
        """Issue (or reuse) a server certificate covering ``names`` + localhost; return cert/key paths.

        Re-issued when the configured names change or the certificate is within 30 days of expiry.
        """
        cert_path, key_path = directory / "server.crt", directory / "server.key"
        wanted = sorted({*names, "localhost", "127.0.0.1", "::1"})
        if cert_path.exists() and key_path.exists():
            existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if _san_names(existing) == wanted and existing.not_valid_after_utc > _now() + dt.timedelta(days=30):
                return cert_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in wanted:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost")])
        builder = (
            self._builder(subject, key.public_key(), SERVER_DAYS)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        issued = self._sign(builder)
        _write_private(key_path, _key_pem(key))
        cert_path.write_text(issued.pem)
        return cert_path, key_path


def _san_names(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    out += ext.get_values_for_type(x509.DNSName)
    return sorted(out)
