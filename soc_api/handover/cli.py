"""``soc handover ...``: keys, air-gapped export/verify, the outbox, one delivery pass.

Settings come from the ``[handover]`` table of the API's TOML file (``--config``); ``--key-dir``
and ``--site`` override it for key management on a machine without the API configuration.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.config import ApiConfig, load_api_config
from soc_api.db.migrate import upgrade
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.handover import airgap
from soc_api.handover.delivery import Deliverer
from soc_api.handover.keys import KeyRing, KeyRingError, PublicKeySet
from soc_api.handover.models import HandoverKey, OutboxEntry
from soc_api.handover.settings import HandoverSettings
from soc_api.services import audit
from soc_common.config import ConfigError
from soc_common.ecs import iso, parse_ts

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Hand-over to the central monitoring centre.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Site signing keys.")
outbox_app = typer.Typer(no_args_is_help=True, help="Packages waiting for or done with delivery.")
app.add_typer(keys_app, name="keys")
app.add_typer(outbox_app, name="outbox")
console = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="The API's TOML configuration file.")]
KeyDirOpt = Annotated[Path | None, typer.Option("--key-dir", help="Key directory (default: handover.key_dir).")]
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site code (default: handover.site).")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _raw(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _fail(f"{path}: {exc}", 2) from None


def _settings(path: Path | None, key_dir: Path | None = None, site: str | None = None) -> HandoverSettings:
    raw = dict(_raw(path).get("handover", {}))
    if key_dir is not None:
        raw["key_dir"] = str(key_dir)
    if site is not None:
        raw["site"] = site
    try:
        return HandoverSettings.model_validate(raw)
    except ValueError as exc:
        raise _fail(f"[handover]: {exc}", 2) from None


def _api_config(path: Path | None) -> ApiConfig:
    try:
        if "handover" in ApiConfig.model_fields or path is None:
            return load_api_config(path)
        # Until [handover] is part of ApiConfig, read the rest of the file ourselves.
        raw = {k: v for k, v in _raw(path).items() if k != "handover"}
        return ApiConfig.model_validate(raw)
    except (ConfigError, ValueError) as exc:
        raise _fail(str(exc), 2) from None


def _sessions(path: Path | None) -> sessionmaker[Session]:
    cfg = _api_config(path)
    upgrade(cfg.database.url)
    return make_session_factory(make_engine(cfg.database.url))


def _record_keys(sessions: sessionmaker[Session], ring: KeyRing, action: str, detail: dict[str, Any]) -> None:
    """Mirror the public keys into the database and audit the change (legal weight)."""
    with sessions() as session, session.begin():
        begin_write(session)
        public = ring.public_set()
        for k in public.keys:
            row = session.get(HandoverKey, k.kid)
            if row is None:
                session.add(
                    HandoverKey(
                        kid=k.kid,
                        owner=public.owner,
                        public_key=k.public_key,
                        valid_from=k.valid_from,
                        valid_until=k.valid_until,
                    )
                )
            else:
                row.valid_until = k.valid_until
        audit.append(
            session, actor="cli", action=action, object_type="handover_key", object_id=detail.get("kid"), after=detail
        )


@keys_app.command("generate")
def keys_generate(
    config: ConfigOpt = None,
    key_dir: KeyDirOpt = None,
    site: SiteOpt = None,
    no_db: bool = typer.Option(False, "--no-db", help="Do not record the key in the database."),
) -> None:
    """Create the site's first signing key."""
    s = _settings(config, key_dir, site)
    ring = KeyRing(s.key_dir)
    try:
        record = ring.generate(s.site)
    except KeyRingError as exc:
        raise _fail(str(exc)) from None
    if not no_db:
        _record_keys(_sessions(config), ring, "handover.key_generated", {"kid": record.kid, "site": s.site})
    typer.echo(f"generated key {record.kid} for {s.site} in {s.key_dir}")


@keys_app.command("rotate")
def keys_rotate(
    config: ConfigOpt = None, key_dir: KeyDirOpt = None, no_db: bool = typer.Option(False, "--no-db")
) -> None:
    """Start a new signing key; the old one stays valid for packages signed before now."""
    s = _settings(config, key_dir)
    ring = KeyRing(s.key_dir)
    try:
        old, new = ring.rotate()
    except KeyRingError as exc:
        raise _fail(str(exc)) from None
    if not no_db:
        _record_keys(
            _sessions(config),
            ring,
            "handover.key_rotated",
            {"kid": new.kid, "previous": old.kid, "at": iso(new.valid_from)},
        )
    typer.echo(f"rotated: {old.kid} valid until {iso(old.valid_until or new.valid_from)}; new key {new.kid}")


@keys_app.command("export-public")
def keys_export_public(
    config: ConfigOpt = None, key_dir: KeyDirOpt = None, out: Annotated[Path | None, typer.Option("--out")] = None
) -> None:
    """Print (or write) the public key set to register at the centre."""
    s = _settings(config, key_dir)
    try:
        text = json.dumps(KeyRing(s.key_dir).public_set().to_json(), indent=2) + "\n"
    except KeyRingError as exc:
        raise _fail(str(exc)) from None
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the packages and manifest to.")],
    since: Annotated[str | None, typer.Option("--since", help="ISO time: packages created at or after.")] = None,
    config: ConfigOpt = None,
    key_dir: KeyDirOpt = None,
    site: SiteOpt = None,
) -> None:
    """Air-gapped hand-over: write each package as a file plus a signed manifest."""
    s = _settings(config, key_dir, site)
    try:
        start = parse_ts(since) if since else None
    except ValueError as exc:
        raise _fail(f"--since: {exc}", 2) from None
    sessions = _sessions(config)
    with sessions() as session:
        try:
            manifest = airgap.export(session, KeyRing(s.key_dir), s.site, out, start)
        except KeyRingError as exc:
            raise _fail(str(exc)) from None
    typer.echo(
        f"exported {len(manifest['packages'])} packages "
        f"(sequence {manifest['first_sequence']}-{manifest['last_sequence']}) to {out}"
    )


@app.command("verify")
def verify_cmd(
    directory: Annotated[Path, typer.Argument(help="An exported directory (or a copy of it).")],
    keys: Annotated[
        Path | None, typer.Option("--keys", help="The site's public key set registered at the centre.")
    ] = None,
) -> None:
    """Check signatures, hashes and sequence completeness; exit 1 naming every problem."""
    key_file = keys or directory / airgap.PUBLIC_KEYS
    if keys is None:
        typer.echo(f"warning: using the key set shipped in {key_file}; pass --keys with the registered one", err=True)
    try:
        key_set = PublicKeySet.load(key_file)
    except KeyRingError as exc:
        raise _fail(str(exc)) from None
    report = airgap.verify_dir(directory, key_set)
    for problem in report.problems:
        typer.echo(f"PROBLEM {problem}")
    if not report.ok:
        raise typer.Exit(1)
    typer.echo(f"OK: {report.checked} packages verified")


@outbox_app.command("list")
def outbox_list(
    config: ConfigOpt = None, status: Annotated[str | None, typer.Option("--status")] = None, limit: int = 50
) -> None:
    """The newest packages and their delivery state."""
    with _sessions(config)() as session:
        stmt = select(OutboxEntry).order_by(OutboxEntry.site, OutboxEntry.sequence.desc()).limit(limit)
        if status:
            stmt = stmt.where(OutboxEntry.status == status)
        table = Table("site", "seq", "type", "status", "attempts", "created", "package id", "last error")
        for e in session.scalars(stmt):
            table.add_row(
                e.site,
                str(e.sequence),
                e.type,
                e.status,
                str(e.attempts),
                iso(e.created_at),
                e.package_id,
                (e.last_error or "")[:60],
            )
    console.print(table)


@app.command("push")
def push_cmd(config: ConfigOpt = None) -> None:
    """One delivery pass over every due package."""
    s = _settings(config)
    if s.endpoint is None or s.receiver_keys is None:
        raise _fail("[handover] endpoint and receiver_keys must be set", 2)
    try:
        receiver_keys = PublicKeySet.load(s.receiver_keys)
    except KeyRingError as exc:
        raise _fail(str(exc)) from None
    result = Deliverer(s, _sessions(config), receiver_keys).push_pass()
    typer.echo(f"acknowledged {result.acknowledged}, retrying {result.retrying}, failed {result.failed}")
    if result.failed:
        raise typer.Exit(1)
