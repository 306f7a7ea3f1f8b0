"""``soc central ...``: the monitoring centre's side of the hand-over.

``serve`` runs the reference receiver under uvicorn over TLS with *required* client
certificates, so only a site holding a certificate from the sites' CA can even open a
connection. uvicorn does not hand the peer certificate to the application, so the HTTP protocol
class here puts its SHA-256 into ``scope["extensions"]["tls"]["client_cert_sha256"]``; the
receiver then checks it against the fingerprint registered for the package's site (``sites add
--cert-fingerprint``), which stops one site's certificate being used to send as another.
Sites live in a JSON registry next to the configuration (public key set + fingerprint per site).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import Field
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from uvicorn.protocols.http.h11_impl import H11Protocol

from soc_api.db.session import make_engine
from soc_api.handover.keys import PublicKeySet, load_encryption_key
from soc_api.handover.receiver import (
    ReceivedPackage,
    ReceiverBase,
    ReceiverConfig,
    create_receiver_app,
    normalise_fingerprint,
    site_status,
)
from soc_common.config import Section

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="The central monitoring centre: receive hand-over packages from the sites.",
)
sites_app = typer.Typer(no_args_is_help=True, help="Registered sending sites.")
app.add_typer(sites_app, name="sites")
console = Console()


class CentralSettings(Section):
    """``[central]`` table of ``central.toml``."""

    name: str = "central"
    db_url: str = "sqlite:///data/central.db"
    key_dir: Path = Path("data/central-keys")  # Ed25519 key ring that signs receipts
    sites_file: Path = Path("data/central-sites.json")
    encryption_key: Path | None = None  # X25519 private key (PEM): accept encrypted envelopes
    host: str = "127.0.0.1"  # production: the centre's address
    port: int = Field(default=8443, ge=0, le=65535)
    tls_cert: Path = Path("data/central-server.pem")
    tls_key: Path = Path("data/central-server.key")
    client_ca: Path = Path("data/sites-ca.pem")  # CA that issues the sites' client certificates


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="central.toml")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings(path: Path) -> CentralSettings:
    """Read ``[central]``; relative paths are resolved against the file's folder."""
    try:
        raw = dict(tomllib.loads(path.read_text(encoding="utf-8")).get("central", {}))
        settings = CentralSettings.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise _fail(f"{path}: {exc}") from None
    base = path.resolve().parent
    updates: dict[str, Any] = {}
    for name in ("key_dir", "sites_file", "encryption_key", "tls_cert", "tls_key", "client_ca"):
        value = getattr(settings, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = base / value
    return settings.model_copy(update=updates)


def read_sites(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"{path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def receiver_config(settings: CentralSettings) -> ReceiverConfig:
    sites = read_sites(settings.sites_file)
    try:
        keys = {code: PublicKeySet.from_json(entry["public_keys"]) for code, entry in sites.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"{settings.sites_file}: {exc}") from None
    prints = {code: str(e["cert_sha256"]) for code, e in sites.items() if e.get("cert_sha256")}
    encryption = load_encryption_key(settings.encryption_key) if settings.encryption_key else None
    return ReceiverConfig(
        db_url=settings.db_url,
        key_dir=settings.key_dir,
        site_keys=keys,
        name=settings.name,
        encryption_key=encryption,
        site_cert_fingerprints=prints,
    )


class PeerCertProtocol(H11Protocol):
    """h11 with the TLS client certificate's SHA-256 in every request's ASGI scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return
        fingerprint = hashlib.sha256(der).hexdigest()
        inner = self.app

        async def with_peer(scope: Any, receive: Any, send: Any) -> None:
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {**extensions.get("tls", {}), "client_cert_sha256": fingerprint}
            await inner({**scope, "extensions": extensions}, receive, send)

        self.app = with_peer


def server_config(settings: CentralSettings, app_: Any) -> uvicorn.Config:
    for name in ("tls_cert", "tls_key", "client_ca"):
        if not getattr(settings, name).is_file():
            raise _fail(f"central.{name}: {getattr(settings, name)} is not a file")
    return uvicorn.Config(
        app_,
        host=settings.host,
        port=settings.port,
        http=PeerCertProtocol,
        lifespan="off",
        log_level="warning",
        ssl_certfile=str(settings.tls_cert),
        ssl_keyfile=str(settings.tls_key),
        ssl_ca_certs=str(settings.client_ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        timeout_graceful_shutdown=5,
    )


@app.command()
def serve(config: ConfigOpt) -> None:
    """Run the receiver over HTTPS with required client certificates."""
    settings = load_settings(config)
    uvicorn.Server(server_config(settings, create_receiver_app(receiver_config(settings)))).run()


@sites_app.command("add")
def sites_add(
    code: Annotated[str, typer.Argument(help="Site code, as in its packages' 'site'.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The site's public key set (JSON).")],
    config: ConfigOpt,
    cert_fingerprint: Annotated[
        str | None, typer.Option("--cert-fingerprint", help="SHA-256 of the site's TLS client certificate.")
    ] = None,
) -> None:
    """Register (or update) a site: its signing keys and, optionally, its client certificate."""
    settings = load_settings(config)
    try:
        keys = PublicKeySet.load(public_key)
        fingerprint = normalise_fingerprint(cert_fingerprint) if cert_fingerprint else None
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(str(exc)) from None
    sites = read_sites(settings.sites_file)
    sites[code] = {"public_keys": keys.to_json(), "cert_sha256": fingerprint}
    settings.sites_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.sites_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(sites, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(settings.sites_file)
    typer.echo(f"site {code}: {len(keys.keys)} key(s), certificate {'bound' if fingerprint else 'not bound'}")


@app.command()
def status(config: ConfigOpt, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per site: last sequence, missing sequences, last arrival, packages by type."""
    settings = load_settings(config)
    engine = make_engine(settings.db_url)
    ReceiverBase.metadata.create_all(engine)
    with sessionmaker(engine)() as session:
        held = set(session.scalars(select(ReceivedPackage.site).distinct()))
        codes = sorted(held | set(read_sites(settings.sites_file)))
        rows = [site_status(session, code) for code in codes]
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("site", "last seq", "missing", "last received", "by type")
    for r in rows:
        counts = ", ".join(f"{k}={v}" for k, v in r["counts"].items())
        table.add_row(r["site"], str(r["last_sequence"]), _ranges(r["missing"]), r["last_received"] or "-", counts)
    console.print(table)


def _ranges(numbers: list[int]) -> str:
    """[1,2,3,7] -> '1-3, 7' so a long gap stays readable."""
    if not numbers:
        return "-"
    parts: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = n
        prev = n
    parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts)
