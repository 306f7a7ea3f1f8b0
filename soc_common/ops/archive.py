"""The backup archive: staging the parts, the manifest, writing the tar.gz and reading it back verified.

Layout inside the tar.gz: ``manifest.json`` first, then ``parts/<part name>/<relative path>`` for
every file. The manifest lists every file with its SHA-256, size, mode and owner, so a restore can
check the whole archive before touching anything on disk, and refuse members it does not list.
"""

from __future__ import annotations

import grp
import json
import os
import platform
import pwd
import shutil
import socket
import sqlite3
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from soc_common import __version__
from soc_common.ecs import iso, utc_now
from soc_common.ops.plan import Part, Plan
from soc_common.ops.snapshot import (
    is_sqlite,
    is_sqlite_side_file,
    pg_dump,
    sha256_file,
    snapshot_sqlite,
    sqlite_revision,
)

FORMAT = "soc-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_NAME = "database.sqlite"
PGDUMP_NAME = "database.dump"


class ArchiveError(Exception):
    """The archive is unreadable, incomplete, altered or not a SOC backup."""


@dataclass
class FileEntry:
    path: str  # inside the archive
    rel: str  # relative to the part's target (a file part: its own name)
    sha256: str
    size: int
    mode: int
    owner: str | None = None
    group: str | None = None


@dataclass
class PartRecord:
    name: str
    kind: str
    target: str
    soc_database: bool = False
    config_role: str | None = None
    schema_revision: str | None = None
    files: list[FileEntry] = field(default_factory=list)


@dataclass
class Manifest:
    created_at: str
    soc_version: str
    python: str
    sqlite: str
    host: str
    event_store: str
    notes: list[str]
    parts: list[PartRecord]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ArchiveError("not a SOC backup (manifest format)")
            if int(raw.get("format_version", 0)) > FORMAT_VERSION:
                raise ArchiveError(f"backup format {raw['format_version']} is newer than this soc supports")
            parts = [PartRecord(**{**p, "files": [FileEntry(**f) for f in p["files"]]}) for p in raw.pop("parts")]
            return cls(**raw, parts=parts)
        except (ValueError, TypeError, KeyError) as exc:
            raise ArchiveError(f"the manifest is malformed: {exc}") from None


def _owner(st: os.stat_result) -> tuple[str | None, str | None]:
    try:
        user: str | None = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = None
    try:
        group: str | None = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return user, group


def _safe_rel(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or any(p in ("..", "") for p in path.parts) or "\\" in rel:
        raise ArchiveError(f"unsafe path in archive: {rel!r}")
    return path


def _entry(part: Part, staged: Path, rel: str, original: Path | None) -> FileEntry:
    st = (original or staged).stat()
    owner, group = _owner(st)
    return FileEntry(
        path=f"parts/{part.name}/{rel}",
        rel=rel,
        sha256=sha256_file(staged),
        size=staged.stat().st_size,
        mode=st.st_mode & 0o7777,
        owner=owner,
        group=group,
    )


def _stage_tree(part: Part, source: Path, root: Path) -> list[FileEntry]:
    entries: list[FileEntry] = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file() or is_sqlite_side_file(path):
            continue
        rel = path.relative_to(source).as_posix()
        staged = root / rel
        staged.parent.mkdir(parents=True, exist_ok=True)
        if is_sqlite(path):
            snapshot_sqlite(path, staged)
        else:
            shutil.copyfile(path, staged)
        entries.append(_entry(part, staged, rel, path))
    return entries


def stage_part(part: Part, staging: Path) -> PartRecord | None:
    """Copy one part into ``staging``; None when an optional part is absent."""
    root = staging / "parts" / part.name
    record = PartRecord(part.name, part.kind, part.target, part.soc_database, part.config_role)
    source = part.source
    if part.kind != "postgresql" and (source is None or not source.exists()):
        if part.optional:
            return None
        raise ArchiveError(f"{part.name}: {source} does not exist")
    root.mkdir(parents=True)
    if part.kind == "file" and source is not None:
        staged = root / source.name
        shutil.copyfile(source, staged)
        record.files.append(_entry(part, staged, source.name, source))
    elif part.kind == "tree" and source is not None:
        record.files = _stage_tree(part, source, root)
    elif part.kind == "sqlite" and source is not None:
        staged = root / SQLITE_NAME
        snapshot_sqlite(source, staged)
        record.files.append(_entry(part, staged, SQLITE_NAME, source))
        if part.soc_database:
            record.schema_revision = sqlite_revision(staged)
    elif part.kind == "postgresql" and part.url is not None:
        staged = root / PGDUMP_NAME
        pg_dump(part.url, staged)
        record.files.append(_entry(part, staged, PGDUMP_NAME, None))
        if part.soc_database:
            from soc_api.db.migrate import current_revision

            record.schema_revision = current_revision(part.url)
    else:
        raise ArchiveError(f"{part.name}: cannot back up a {part.kind} part without a source")
    return record


def stage(plan: Plan, staging: Path) -> Manifest:
    records = [r for r in (stage_part(p, staging) for p in plan.parts) if r is not None]
    return Manifest(
        created_at=iso(utc_now()),
        soc_version=__version__,
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        host=socket.gethostname(),
        event_store=plan.event_store,
        notes=list(plan.notes),
        parts=records,
    )


def write_archive(manifest: Manifest, staging: Path, out: Path) -> None:
    """Write the tar.gz (0600): the manifest first, then every staged file with normalised metadata."""
    data = manifest.to_json()
    (staging / MANIFEST).write_bytes(data)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
        _add(tar, staging / MANIFEST, MANIFEST, 0o600)
        for record in manifest.parts:
            for entry in record.files:
                _add(tar, staging / entry.path, entry.path, entry.mode)


def _add(tar: tarfile.TarFile, path: Path, arcname: str, mode: int) -> None:
    info = tar.gettarinfo(str(path), arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = mode
    with path.open("rb") as fh:
        tar.addfile(info, fh)


def read_verified(archive: Path, staging: Path) -> Manifest:
    """Extract ``archive`` into ``staging``, checking every file against the manifest.

    Nothing outside ``staging`` is written; members the manifest does not list, links, devices,
    unsafe names, missing files and hash mismatches are all errors.
    """
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise ArchiveError("not a SOC backup: the archive does not start with manifest.json")
            fh = tar.extractfile(first)
            if fh is None:
                raise ArchiveError("manifest.json is unreadable")
            manifest = Manifest.from_json(fh.read(16 << 20))
            expected: dict[str, FileEntry] = {}
            for record in manifest.parts:
                _safe_rel(record.name)
                for entry in record.files:
                    _safe_rel(entry.rel)
                    if entry.path != f"parts/{record.name}/{entry.rel}":
                        raise ArchiveError(f"manifest entry {entry.path!r} is misplaced")
                    expected[entry.path] = entry
            seen: set[str] = set()
            while (member := tar.next()) is not None:  # iterating the TarFile would restart at 0
                found = expected.get(member.name)
                if found is None or not member.isfile() or member.name in seen:
                    raise ArchiveError(f"unexpected member in archive: {member.name!r}")
                _extract_checked(tar, member, found, staging)
                seen.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{archive}: cannot read the archive: {exc}") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(f"the archive is incomplete: {len(missing)} file(s) missing, first {missing[0]}")
    return manifest


def _extract_checked(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: FileEntry, staging: Path) -> None:
    import hashlib

    target = staging / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    if src is None:
        raise ArchiveError(f"{member.name}: unreadable")
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != entry.sha256:
        raise ArchiveError(f"{member.name}: SHA-256 does not match the manifest (altered or corrupt)")
