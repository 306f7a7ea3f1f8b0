"""Put a verified backup back on disk.

Nothing is touched until the whole archive has been checked (archive.read_verified). Existing data
is never overwritten silently: without ``force`` the restore is refused and lists what is in the
way; with ``force`` files and folders are moved aside to ``<name>.pre-restore-<UTC stamp>`` (a
rename, free on the same file system) so a mistaken restore can be undone, and PostgreSQL objects
are replaced inside one transaction. Configuration files come back first, because the database URL
(and its password, often from the environment) is read from them; SOC databases are migrated to
the schema head at the end, so a backup from an older release comes back ready for this one.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from soc_common.config import load_config
from soc_common.ops.archive import FileEntry, Manifest, PartRecord
from soc_common.ops.snapshot import pg_has_tables, pg_restore, remove_sqlite_side_files


class RestoreRefused(Exception):
    """Existing data is in the way and ``force`` was not given."""

    def __init__(self, conflicts: list[str]) -> None:
        super().__init__("existing data would be overwritten: " + ", ".join(conflicts))
        self.conflicts = conflicts


@dataclass
class RestoreReport:
    restored: list[str] = field(default_factory=list)
    moved_aside: list[str] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _chown(path: Path, entry: FileEntry) -> None:
    """As root, give files back to the service user that owned them (when it exists here)."""
    if os.geteuid() != 0:
        return
    try:
        uid = pwd.getpwnam(entry.owner).pw_uid if entry.owner else -1
        gid = grp.getgrnam(entry.group).gr_gid if entry.group else -1
    except KeyError:
        return
    os.chown(path, uid, gid)


def _place(staged: Path, target: Path, entry: FileEntry) -> None:
    """Move one verified file into place atomically with its recorded mode and owner."""
    if not target.parent.exists():
        target.parent.mkdir(parents=True, mode=0o700)
        _chown(target.parent, entry)
    tmp = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(staged, tmp)
    os.chmod(tmp, entry.mode)
    _chown(tmp, entry)
    os.replace(tmp, target)


def _move_aside(path: Path, stamp: str) -> Path:
    aside = path.with_name(f"{path.name}.pre-restore-{stamp}")
    os.replace(path, aside)
    return aside


class Restorer:
    def __init__(self, manifest: Manifest, staging: Path, *, force: bool, database_url: str | None) -> None:
        self.manifest = manifest
        self.staging = staging
        self.force = force
        self.database_url = database_url
        self.stamp = _stamp()
        self.report = RestoreReport()

    # Which URL a PostgreSQL part goes back to: the operator's, else the restored configuration's
    # (with the environment, where the password usually lives), else the manifest's (no password).
    def database_url_for(self, record: PartRecord) -> str:
        if self.database_url:
            return self.database_url
        config = self._config_path(record.config_role)
        if config is not None and config.exists():
            url = _role_database_url(record.config_role, config)
            if url:
                return url
        return record.target

    def _config_path(self, role: str | None) -> Path | None:
        for record in self.manifest.parts:
            if role and record.name == f"config-{role}":
                return Path(record.target)
        return None

    def _exists(self, record: PartRecord) -> bool:
        if record.kind == "postgresql":
            return pg_has_tables(self.database_url_for(record))
        target = Path(record.target)
        if record.kind == "tree":
            return target.is_dir() and any(target.iterdir())
        return target.exists()

    def conflicts(self) -> list[str]:
        return [f"{r.name} ({r.target})" for r in self.ordered() if self._exists(r)]

    def ordered(self) -> list[PartRecord]:
        """Configuration first (database URLs come from it), databases last."""

        def rank(record: PartRecord) -> int:
            if record.name.startswith("config-"):
                return 0
            return 2 if record.soc_database else 1

        return sorted(self.manifest.parts, key=rank)

    def run(self, migrate: Callable[[str], None]) -> RestoreReport:
        if not self.force:
            conflicts = self.conflicts()
            if conflicts:
                raise RestoreRefused(conflicts)
        for record in self.ordered():
            self._restore(record)
            self.report.restored.append(record.name)
        for record in self.ordered():
            if record.soc_database:
                url = f"sqlite:///{record.target}" if record.kind == "sqlite" else self.database_url_for(record)
                migrate(url)
                self.report.migrated.append(record.name)
        return self.report

    def _aside(self, target: Path) -> None:
        if target.exists() or target.is_symlink():
            self.report.moved_aside.append(str(_move_aside(target, self.stamp)))

    def _restore(self, record: PartRecord) -> None:
        target = Path(record.target)
        if record.kind == "postgresql":
            dump = self.staging / record.files[0].path
            pg_restore(self.database_url_for(record), dump, clean=self.force)
            return
        if record.kind == "tree":
            if target.is_dir() and any(target.iterdir()):
                self._aside(target)
            for entry in record.files:
                _place(self.staging / entry.path, target / entry.rel, entry)
            return
        self._aside(target)
        if record.kind == "sqlite":
            for suffix in ("-wal", "-shm", "-journal"):
                self._aside(Path(f"{target}{suffix}"))
            remove_sqlite_side_files(target)
        entry = record.files[0]
        _place(self.staging / entry.path, target, entry)


def _role_database_url(role: str | None, config: Path) -> str | None:
    if role == "api":
        from soc_api.config import ApiConfig

        return load_config(ApiConfig, config, role="api").database.url
    if role == "collector":
        from collector.config import CollectorConfig

        return load_config(CollectorConfig, config, role="collector").alerts_database_url or None
    return None
