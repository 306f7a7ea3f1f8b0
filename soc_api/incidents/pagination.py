"""Keyset ("cursor") pagination shared by the incident, user, suppression and outbox lists.

The cursor is an opaque base64 of ``{"t": list tag, "k": [key values]}`` for the last row of the
page; the next page starts strictly after it, so rows added meanwhile never shift a page. Same
``{items, next_cursor}`` shape as the alert list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import Session

from soc_common.ecs import parse_ts

Decoder = Callable[[Any], Any]


class CursorError(ValueError):
    """Not a cursor this list issued."""


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def encode(tag: str, key: Sequence[Any]) -> str:
    raw = json.dumps({"t": tag, "k": [_plain(v) for v in key]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, tag: str, decoders: Sequence[Decoder]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("t") != tag or not isinstance(raw.get("k"), list):
            raise CursorError("cursor does not belong to this list")
        key = raw["k"]
        if len(key) != len(decoders):
            raise CursorError("cursor has the wrong shape")
        return [d(v) for d, v in zip(decoders, key, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorError(f"bad cursor: {exc}"[:200]) from None


def as_time(value: Any) -> datetime:
    return parse_ts(str(value))


def page(
    session: Session,
    stmt: Select[Any],
    columns: Sequence[Any],
    key_of: Callable[[Any], Sequence[Any]],
    *,
    tag: str,
    decoders: Sequence[Decoder],
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by ``columns`` (a unique key) and the cursor of the next."""
    if cursor:
        key = decode(cursor, tag, decoders)
        cmp = tuple_(*columns) < tuple_(*key) if descending else tuple_(*columns) > tuple_(*key)
        stmt = stmt.where(cmp)
    stmt = stmt.order_by(*[c.desc() if descending else c.asc() for c in columns]).limit(limit + 1)
    rows = list(session.scalars(stmt).unique())
    next_cursor = encode(tag, key_of(rows[limit - 1])) if len(rows) > limit else None
    return rows[:limit], next_cursor
