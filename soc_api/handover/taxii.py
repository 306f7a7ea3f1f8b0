"""A read-only TAXII 2.1 server (discovery, API root, collections, objects, manifest) as an APIRouter.

Objects come from ``handover_stix_objects`` (filled when packages are built), ordered by
``date_added`` then row id, so ``added_after`` and ``next`` paging are stable while new objects
arrive. Callers authenticate with an API key holding the ``taxii:read`` scope, given as
``Authorization: Bearer``/``X-API-Key``, or as HTTP Basic whose password is the API key (the
user name is ignored), because many TAXII clients only speak Basic.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from soc_api.deps import SessionDep, resolve_principal
from soc_api.handover.models import StixObjectRow
from soc_api.problems import Problem
from soc_api.services import auth
from soc_api.services.principal import Principal, expand_site_scope
from soc_common.ecs import parse_ts

TAXII_READ = "taxii:read"
MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
API_ROOT = "soc"


class TaxiiResponse(JSONResponse):
    media_type = MEDIA_TYPE


def _taxii_time(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unauthorised(detail: str) -> Problem:
    return Problem(401, detail, kind="unauthorised", headers={"WWW-Authenticate": 'Basic realm="taxii"'})


def taxii_principal(request: Request, session: SessionDep) -> Principal:
    header = request.headers.get("authorization", "")
    principal: Principal | None
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorised("malformed Basic credentials") from None
        _, _, secret = decoded.partition(":")
        key = auth.check_api_key(session, secret)
        if key is None:
            raise _unauthorised("invalid, expired or revoked API key")
        principal = Principal(
            name=f"apikey:{key.name}",
            kind="apikey",
            permissions=frozenset(key.scopes or ()),
            sites=expand_site_scope(session, key.site_scope),
        )
    else:
        principal = resolve_principal(request, session)
    if principal is None:
        raise _unauthorised("authentication required")
    if not principal.can(TAXII_READ):
        raise Problem(403, f"this needs the {TAXII_READ!r} permission", kind="forbidden")
    accept = request.headers.get("accept", "*/*")
    if not any(m in accept for m in ("application/taxii+json", "*/*", "application/*")):
        raise Problem(406, f"this server answers {MEDIA_TYPE}", kind="not-acceptable")
    return principal


Reader = Annotated[Principal, Depends(taxii_principal)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Ids = Annotated[list[str], Query(alias="match[id]")]
Types = Annotated[list[str], Query(alias="match[type]")]
Version = Annotated[str, Query(alias="match[version]")]


def _collections(session: Session) -> list[str]:
    return list(session.scalars(select(StixObjectRow.collection).distinct().order_by(StixObjectRow.collection)))


def _collection_info(collection: str, title: str) -> dict[str, Any]:
    return {
        "id": collection,
        "title": title,
        "description": "Incidents, indicators and sightings handed over by this site (read-only).",
        "can_read": True,
        "can_write": False,
        "media_types": [STIX_MEDIA_TYPE],
    }


def _encode_next(row: StixObjectRow) -> str:
    raw = f"{_taxii_time(row.date_added)}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_next(token: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, ident = raw.partition("|")
        return parse_ts(when), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "invalid 'next' value", kind="bad-request") from None


def _page(
    session: Session,
    collection: str,
    *,
    added_after: str | None,
    limit: int,
    next_token: str | None,
    ids: list[str],
    types: list[str],
    version: str,
) -> tuple[list[StixObjectRow], bool]:
    stmt = select(StixObjectRow).where(StixObjectRow.collection == collection)
    if added_after:
        try:
            stmt = stmt.where(StixObjectRow.date_added > parse_ts(added_after))
        except ValueError:
            raise Problem(400, "invalid added_after timestamp", kind="bad-request") from None
    if next_token:
        when, ident = _decode_next(next_token)
        stmt = stmt.where(
            or_(StixObjectRow.date_added > when, and_(StixObjectRow.date_added == when, StixObjectRow.id > ident))
        )
    if ids:
        stmt = stmt.where(StixObjectRow.stix_id.in_(ids))
    if types:
        stmt = stmt.where(StixObjectRow.stix_type.in_(types))
    if version in ("last", "first"):
        other = aliased(StixObjectRow)
        pick = func.max(other.modified) if version == "last" else func.min(other.modified)
        chosen = (
            select(pick)
            .where(other.collection == StixObjectRow.collection, other.stix_id == StixObjectRow.stix_id)
            .scalar_subquery()
        )
        stmt = stmt.where(StixObjectRow.modified == chosen)
    elif version != "all":
        stmt = stmt.where(StixObjectRow.modified.in_(version.split(",")))
    rows = list(session.scalars(stmt.order_by(StixObjectRow.date_added, StixObjectRow.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def _envelope_headers(rows: list[StixObjectRow]) -> dict[str, str]:
    if not rows:
        return {}
    return {
        "X-TAXII-Date-Added-First": _taxii_time(rows[0].date_added),
        "X-TAXII-Date-Added-Last": _taxii_time(rows[-1].date_added),
    }


def build_taxii_router(title: str = "SOC hand-over", prefix: str = "/taxii2") -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["taxii"])

    def known(session: Session, collection: str) -> None:
        if collection not in _collections(session):
            raise Problem(404, f"no collection {collection!r}", kind="not-found")

    @router.get("/", response_class=TaxiiResponse)
    def discovery(request: Request, _p: Reader) -> TaxiiResponse:
        root = str(request.url_for("taxii_api_root", api_root=API_ROOT))
        return TaxiiResponse({"title": title, "default": root, "api_roots": [root]})

    @router.get("/{api_root}/", response_class=TaxiiResponse, name="taxii_api_root")
    def api_root_info(api_root: str, _p: Reader) -> TaxiiResponse:
        if api_root != API_ROOT:
            raise Problem(404, "unknown API root", kind="not-found")
        return TaxiiResponse({"title": title, "versions": [MEDIA_TYPE], "max_content_length": 0})

    @router.get("/" + API_ROOT + "/collections/", response_class=TaxiiResponse)
    def collections(session: SessionDep, _p: Reader) -> TaxiiResponse:
        return TaxiiResponse({"collections": [_collection_info(c, title) for c in _collections(session)]})

    @router.get("/" + API_ROOT + "/collections/{collection}/", response_class=TaxiiResponse)
    def collection_info(collection: str, session: SessionDep, _p: Reader) -> TaxiiResponse:
        known(session, collection)
        return TaxiiResponse(_collection_info(collection, title))

    def _objects(
        collection: str,
        session: Session,
        added_after: str | None,
        limit: int,
        next_token: str | None,
        ids: list[str],
        types: list[str],
        version: str,
        manifest: bool,
    ) -> TaxiiResponse:
        known(session, collection)
        rows, more = _page(
            session,
            collection,
            added_after=added_after,
            limit=limit,
            next_token=next_token,
            ids=ids,
            types=types,
            version=version,
        )
        body: dict[str, Any] = {"more": more}
        if more and rows:
            body["next"] = _encode_next(rows[-1])
        if manifest:
            body["objects"] = [
                {
                    "id": r.stix_id,
                    "date_added": _taxii_time(r.date_added),
                    "version": r.modified,
                    "media_type": STIX_MEDIA_TYPE,
                }
                for r in rows
            ]
        else:
            body["objects"] = [r.object for r in rows]
        return TaxiiResponse(body, headers=_envelope_headers(rows))

    @router.get("/" + API_ROOT + "/collections/{collection}/objects/", response_class=TaxiiResponse)
    def objects(
        collection: str,
        session: SessionDep,
        _p: Reader,
        added_after: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        next: str | None = None,
        ids: Ids = [],  # noqa: B006 - FastAPI copies defaults per request
        types: Types = [],  # noqa: B006
        version: Version = "last",
    ) -> TaxiiResponse:
        return _objects(collection, session, added_after, limit, next, ids, types, version, manifest=False)

    @router.get("/" + API_ROOT + "/collections/{collection}/objects/{object_id}/", response_class=TaxiiResponse)
    def one_object(
        collection: str,
        object_id: str,
        session: SessionDep,
        _p: Reader,
        added_after: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        next: str | None = None,
        version: Version = "all",
    ) -> TaxiiResponse:
        response = _objects(collection, session, added_after, limit, next, [object_id], [], version, manifest=False)
        if b'"objects":[]' in bytes(response.body):
            raise Problem(404, f"no object {object_id!r}", kind="not-found")
        return response

    @router.get("/" + API_ROOT + "/collections/{collection}/manifest/", response_class=TaxiiResponse)
    def manifest(
        collection: str,
        session: SessionDep,
        _p: Reader,
        added_after: str | None = None,
        limit: Limit = DEFAULT_LIMIT,
        next: str | None = None,
        ids: Ids = [],  # noqa: B006
        types: Types = [],  # noqa: B006
        version: Version = "last",
    ) -> TaxiiResponse:
        return _objects(collection, session, added_after, limit, next, ids, types, version, manifest=True)

    return router
