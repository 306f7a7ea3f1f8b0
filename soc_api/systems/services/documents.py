"""Dossier documents: versioned uploads, content-addressed by SHA-256 under the API data dir.

The declared content type must be allowed and must match the file's leading bytes, so a renamed
executable is not stored as a "PDF". Files are written to a temporary name and renamed, so a
crash never leaves a half file under a valid hash.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api.services import audit, blobs
from soc_api.systems.models import Dossier, DossierDocument
from soc_api.systems.services.context import Ctx, RuleError

_ZIP = b"PK\x03\x04"
MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (_ZIP,),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (_ZIP,),
    "application/vnd.oasis.opendocument.text": (_ZIP,),
    "application/vnd.oasis.opendocument.spreadsheet": (_ZIP,),
    "application/zip": (_ZIP,),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def storage_root(ctx: Ctx) -> Path:
    return ctx.data_dir / "systems" / "documents"


def blob_path(ctx: Ctx, sha256: str) -> Path:
    return blobs.blob_path(storage_root(ctx), sha256)


def check_content(ctx: Ctx, content_type: str, data: bytes) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in ctx.settings.allowed_content_types:
        raise RuleError(f"content type {media!r} is not accepted", status=415, kind="unsupported-media-type")
    if not data:
        raise RuleError("empty document", status=422, kind="validation-error")
    if len(data) > ctx.settings.max_document_bytes:
        raise RuleError(f"document above {ctx.settings.max_document_bytes} bytes", status=413, kind="too-large")
    signatures = MAGIC.get(media)
    if signatures is not None and not data.startswith(signatures):
        raise RuleError(f"the file content is not {media}", status=415, kind="content-mismatch")
    if media == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise RuleError("text/plain documents must be UTF-8", status=415, kind="content-mismatch") from None
    return media


def upload(
    session: Session, ctx: Ctx, dossier: Dossier, part: str, filename: str, content_type: str, data: bytes
) -> DossierDocument:
    media = check_content(ctx, content_type, data)
    safe_name = _SAFE_NAME.sub("_", Path(filename).name)[:200] or "document"
    digest = blobs.store_blob(storage_root(ctx), data)
    last = session.scalar(
        select(func.max(DossierDocument.version)).where(
            DossierDocument.dossier_id == dossier.id, DossierDocument.part == part
        )
    )
    doc = DossierDocument(
        dossier_id=dossier.id,
        part=part,
        version=(last or 0) + 1,
        filename=safe_name,
        content_type=media,
        size=len(data),
        sha256=digest,
        uploaded_by=ctx.actor,
    )
    session.add(doc)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="dossier.document_upload",
        object_type="dossier",
        object_id=str(dossier.id),
        after={
            "part": part,
            "version": doc.version,
            "filename": safe_name,
            "sha256": digest,
            "size": len(data),
            "content_type": media,
        },
        source_ip=ctx.source_ip,
    )
    return doc


def documents(session: Session, dossier_id: int) -> list[DossierDocument]:
    q = select(DossierDocument).where(DossierDocument.dossier_id == dossier_id)
    return list(session.scalars(q.order_by(DossierDocument.part, DossierDocument.version)))


def read_blob(ctx: Ctx, doc: DossierDocument) -> bytes:
    """The stored bytes, re-hashed so a file changed on disk is reported instead of served."""
    data = blob_path(ctx, doc.sha256).read_bytes()
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise RuleError("the stored file no longer matches its SHA-256", status=500, kind="integrity")
    return data
