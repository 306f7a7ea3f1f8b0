"""``soc backup`` and ``soc restore``: one archive with everything needed to rebuild a SOC server.

The archive holds the SOC database (SQLite online backup or ``pg_dump -Fc``), the embedded event
store, configuration files, keys and certificates, and a manifest with SHA-256 of every file. It
contains private keys, so it is written 0600 and can be encrypted with a passphrase (envelope.py).
Elasticsearch data is not in it: Elasticsearch has its own snapshots (deploy/README.md).
"""

from __future__ import annotations

import getpass
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from soc_common.config import ConfigError
from soc_common.ops.archive import ArchiveError, Manifest, read_verified, stage, write_archive
from soc_common.ops.envelope import EnvelopeError, decrypt_file, encrypt_file, is_encrypted
from soc_common.ops.plan import Plan, build_plan
from soc_common.ops.restore import Restorer, RestoreRefused, RestoreReport
from soc_common.ops.snapshot import SnapshotError

PASSPHRASE_ENV = "SOC_BACKUP_PASSPHRASE"
DEFAULT_CONFIGS = {
    "collector": Path("/etc/soc/collector.toml"),
    "api": Path("/etc/soc/api.toml"),
    "agent": Path("/etc/soc/agent.toml"),
}
EXIT_PROBLEM = 1
EXIT_USAGE = 2


def read_passphrase(*, confirm: bool) -> str:
    """From SOC_BACKUP_PASSPHRASE, else the terminal (asked twice when encrypting), else stdin's first line."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("Backup passphrase: ")
        if confirm and getpass.getpass("Repeat the passphrase: ") != first:
            raise EnvelopeError("the passphrases differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def create_backup(plan: Plan, out: Path, *, passphrase: str | None = None) -> Manifest:
    """Stage every part next to ``out``, then write the (optionally encrypted) archive atomically."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".soc-backup-", dir=out.parent) as tmp:
        staging = Path(tmp) / "staging"
        staging.mkdir()
        manifest = stage(plan, staging)
        plain = Path(tmp) / "archive.tar.gz"
        write_archive(manifest, staging, plain)
        if passphrase is not None:
            sealed = Path(tmp) / "archive.enc"
            encrypt_file(plain, sealed, passphrase)
            plain = sealed
        os.chmod(plain, 0o600)
        os.replace(plain, out)
    return manifest


def restore_backup(
    archive: Path,
    *,
    force: bool = False,
    passphrase: str | None = None,
    database_url: str | None = None,
) -> tuple[Manifest, RestoreReport]:
    """Verify ``archive`` completely, then restore it (see restore.py for the rules)."""
    with tempfile.TemporaryDirectory(prefix="soc-restore-") as tmp:
        source = archive
        if is_encrypted(archive):
            if passphrase is None:
                raise EnvelopeError("the backup is encrypted: give the passphrase")
            source = Path(tmp) / "archive.tar.gz"
            decrypt_file(archive, source, passphrase)
        staging = Path(tmp) / "staging"
        staging.mkdir()
        manifest = read_verified(source, staging)
        restorer = Restorer(manifest, staging, force=force, database_url=database_url)
        report = restorer.run(_migrate)
    return manifest, report


def _migrate(url: str) -> None:
    from soc_common.ops.snapshot import public_url

    try:
        from soc_api.db.migrate import upgrade
    except ImportError as exc:
        raise SnapshotError(f"cannot migrate the SOC database: the 'api' extra is not installed ({exc})") from exc
    try:
        upgrade(url)
    except Exception as exc:  # any driver or Alembic failure: report it, the files are already back
        raise SnapshotError(f"migrating {public_url(url)} failed: {exc}") from exc


def _configs(collector: Path | None, api: Path | None, agent: Path | None) -> dict[str, Path | None]:
    given = {"collector": collector, "api": api, "agent": agent}
    if any(given.values()):
        return given
    return {role: path if path.exists() else None for role, path in DEFAULT_CONFIGS.items()}


def backup_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Archive to write (.tar.gz; 0600).")],
    collector: Annotated[Path | None, typer.Option("--collector", help="Collector configuration file.")] = None,
    api: Annotated[Path | None, typer.Option("--api", help="SOC API configuration file.")] = None,
    agent: Annotated[Path | None, typer.Option("--agent", help="Agent configuration file.")] = None,
    encrypt: Annotated[
        bool,
        typer.Option("--encrypt", help=f"Encrypt with a passphrase (from {PASSPHRASE_ENV} or stdin)."),
    ] = False,
) -> None:
    """Back up databases, the embedded event store, configuration, keys and certificates.

    Without --collector/--api/--agent, the files under /etc/soc/ that exist are used.
    """
    configs = _configs(collector, api, agent)
    if not any(configs.values()):
        typer.echo("nothing to back up: give --collector, --api and/or --agent", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        plan = build_plan(configs["collector"], configs["api"], configs["agent"])
        passphrase = read_passphrase(confirm=True) if encrypt else None
        manifest = create_backup(plan, out, passphrase=passphrase)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (ArchiveError, SnapshotError, EnvelopeError, OSError) as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    files = sum(len(p.files) for p in manifest.parts)
    typer.echo(f"wrote {out} ({'encrypted, ' if encrypt else ''}{len(manifest.parts)} parts, {files} files)")
    for part in manifest.parts:
        typer.echo(f"  {part.name:<20} {part.kind:<10} {part.target}")
    for note in manifest.notes:
        typer.echo(f"note: {note}")
    if not encrypt:
        typer.echo("note: the archive holds private keys and secrets; keep it safe or use --encrypt")


def restore_command(
    archive: Annotated[Path, typer.Argument(help="Archive written by soc backup.", exists=True, dir_okay=False)],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing data (old files are moved aside).")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Restore the PostgreSQL SOC database into this URL instead."),
    ] = None,
) -> None:
    """Verify a backup and restore it; SOC databases are migrated to this release's schema.

    Stop the services first (systemctl stop soc-collector soc-api).
    """
    try:
        passphrase = read_passphrase(confirm=False) if is_encrypted(archive) else None
        manifest, report = restore_backup(archive, force=force, passphrase=passphrase, database_url=database_url)
    except RestoreRefused as exc:
        typer.echo("refusing to overwrite existing data (use --force):", err=True)
        for conflict in exc.conflicts:
            typer.echo(f"  {conflict}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (ArchiveError, SnapshotError, EnvelopeError, OSError) as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    typer.echo(f"restored {len(report.restored)} parts from a backup of {manifest.host} ({manifest.created_at})")
    for path in report.moved_aside:
        typer.echo(f"  kept the previous {path}")
    for name in report.migrated:
        typer.echo(f"  {name}: migrated to the current schema")
    for note in manifest.notes:
        typer.echo(f"note: {note}")
