"""The TLS server context of the syslog receiver (RFC 5425).

The certificate is the one configured, or else one issued by the collector CA (as for agent ingest)
into its own directory so the two listeners never overwrite each other's certificate. Client
certificates are checked against the collector CA plus an optional extra CA bundle (devices whose
certificates come from the province's own PKI); whether one is demanded is ``client_auth``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from collector.config import SyslogSettings
from soc_common.config import data_dir_default

ClientAuth = Literal["none", "optional", "required"]
_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def default_state_dir() -> Path:
    """Where the collector keeps its CA when ``data_dir`` is the default (``CollectorConfig.state_dir``)."""
    return data_dir_default().expanduser().absolute() / "collector"


def server_context(
    settings: SyslogSettings,
    *,
    state_dir: Path | None = None,
    client_auth: ClientAuth = "optional",
    client_ca: Path | None = None,
    server_names: list[str] | None = None,
) -> ssl.SSLContext:
    state = state_dir or default_state_dir()
    ca_cert: Path | None = None
    if settings.tls_cert and settings.tls_key:
        cert, key = settings.tls_cert, settings.tls_key
        existing = state / "ca" / "ca.crt"
        ca_cert = existing if existing.exists() else None
    else:
        from collector.ingest.ca import CertificateAuthority

        ca = CertificateAuthority(state / "ca")
        cert, key = ca.ensure_server_cert(state / "tls" / "syslog", server_names or [])
        ca_cert = ca.cert_path
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_auth != "none":
        if ca_cert is not None:
            ctx.load_verify_locations(cafile=str(ca_cert))
        if client_ca is not None:
            ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = _VERIFY[client_auth]
    return ctx
