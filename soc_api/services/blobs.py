"""Content-addressed file storage for uploads and generated reports (dossier documents, drill
minutes, incident evidence and reports): one file per SHA-256 under ``<root>/<2 hex>/<digest>``,
written to a temporary name, fsynced and renamed, so a crash never leaves half a file under a name."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from soc_common.fileio import write_atomic

_DIGEST = re.compile(r"[0-9a-f]{64}")


def blob_path(root: Path, sha256: str) -> Path:
    if not _DIGEST.fullmatch(sha256):
        raise ValueError("not a sha256 digest")
    return root / sha256[:2] / sha256


def store_blob(root: Path, data: bytes) -> str:
    """Write ``data`` under ``root`` (once: the same content is stored once); returns its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    target = blob_path(root, digest)
    if target.exists():
        return digest
    write_atomic(target, data)
    return digest
