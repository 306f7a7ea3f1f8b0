"""Air-gapped hand-over: export packages as files with a signed manifest, and verify a copy.

The manifest names a gapless sequence range and the sha256 of every file, and is signed with
the site key, so on the receiving side a missing, altered, substituted or extra file is named
without any network access.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.handover import FORMAT
from soc_api.handover.jcs import canonicalize
from soc_api.handover.keys import KeyRing, PublicKeySet
from soc_api.handover.models import OutboxEntry
from soc_api.handover.package import PackageError, check_schema, validate_package
from soc_api.handover.signing import SignatureError, sign, verify
from soc_common.ecs import iso, utc_now

MANIFEST = "manifest.json"
PUBLIC_KEYS = "site-public-keys.json"


def package_file_name(entry: OutboxEntry) -> str:
    return f"{entry.sequence:010d}-{entry.type}-{entry.package_id}.json"


def export(session: Session, ring: KeyRing, site: str, out: Path, since: datetime | None = None) -> dict[str, Any]:
    """Write the site's packages created at or after ``since`` and a signed manifest into ``out``."""
    stmt = select(OutboxEntry).where(OutboxEntry.site == site).order_by(OutboxEntry.sequence)
    if since is not None:
        stmt = stmt.where(OutboxEntry.created_at >= since)
    entries = list(session.scalars(stmt))
    out.mkdir(parents=True, exist_ok=True)
    listed: list[dict[str, Any]] = []
    for entry in entries:
        data = canonicalize(entry.document)
        name = package_file_name(entry)
        (out / name).write_bytes(data)
        listed.append(
            {
                "sequence": entry.sequence,
                "package_id": entry.package_id,
                "type": entry.type,
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {
        "format": FORMAT,
        "kind": "manifest",
        "site": site,
        "created": iso(utc_now()),
        "since": iso(since) if since else None,
        "first_sequence": listed[0]["sequence"] if listed else 0,
        "last_sequence": listed[-1]["sequence"] if listed else 0,
        "packages": listed,
    }
    signed = sign(manifest, ring.current())
    (out / MANIFEST).write_text(json.dumps(signed, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / PUBLIC_KEYS).write_text(json.dumps(ring.public_set().to_json(), indent=1) + "\n", encoding="utf-8")
    return signed


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_package(path: Path, item: dict[str, Any], site: str, keys: PublicKeySet, report: VerifyReport) -> None:
    seq = item.get("sequence")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != item.get("sha256"):
        report.problems.append(f"sequence {seq}: {path.name} altered (sha256 differs from the manifest)")
        return
    try:
        document = json.loads(data)
        validate_package(document)
        verify(document, keys, "created")
    except (ValueError, PackageError, SignatureError) as exc:
        report.problems.append(f"sequence {seq}: {path.name}: {exc}")
        return
    if document["sequence"] != seq or document["package_id"] != item.get("package_id") or document["site"] != site:
        report.problems.append(f"sequence {seq}: {path.name} is not the package the manifest lists")
        return
    report.checked += 1


def verify_dir(directory: Path, keys: PublicKeySet) -> VerifyReport:
    """Check the manifest signature, sequence completeness, and every file's hash and signature."""
    report = VerifyReport()
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        check_schema("manifest", manifest)
        verify(manifest, keys, "created")
    except (OSError, ValueError, PackageError, SignatureError) as exc:
        report.problems.append(f"{MANIFEST}: {exc}")
        return report
    site = manifest["site"]
    items = manifest["packages"]
    numbers = [int(i["sequence"]) for i in items]
    expected = list(range(manifest["first_sequence"], manifest["last_sequence"] + 1)) if items else []
    for n in sorted(set(expected) - set(numbers)):
        report.problems.append(f"sequence {n}: missing from the manifest (gap)")
    for item in items:
        path = directory / str(item["file"])
        if not path.is_file():
            report.problems.append(f"sequence {item['sequence']}: {item['file']} missing")
            continue
        _check_package(path, item, site, keys, report)
    listed = {str(i["file"]) for i in items} | {MANIFEST, PUBLIC_KEYS}
    for extra in sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in listed):
        report.problems.append(f"{extra}: not listed in the manifest")
    return report
