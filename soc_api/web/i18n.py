"""Gettext catalogues (``locale/<lang>/LC_MESSAGES/messages.po``) read at start-up, and
locale-aware formatting of dates and numbers (Babel).

Reading the ``.po`` files directly (no compiled ``.mo``) means a fresh checkout or wheel needs no
build step, and translators review the same file the server uses. Msgids are the English texts.
A msgid missing from a catalogue falls back to the English text and is recorded in
:data:`MISSING` so tests can fail on it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

log = logging.getLogger(__name__)
LANGUAGES = ("vi", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
MISSING: set[tuple[str, str]] = set()  # (lang, msgid) asked for but not translated
_DATETIME_PATTERN = {"vi": "dd/MM/yyyy HH:mm:ss", "en": "yyyy-MM-dd HH:mm:ss"}
_DATE_PATTERN = {"vi": "dd/MM/yyyy", "en": "yyyy-MM-dd"}


def N_(msgid: str) -> str:
    """Mark a msgid for extraction where it is translated later (labels, nav entries)."""
    return msgid


@cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid -> translation for ``lang`` (fuzzy and empty entries are left out)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    out: dict[str, str] = {}
    for message in cat:
        msgid, text = message.id, message.string
        if isinstance(msgid, str) and isinstance(text, str) and msgid and text and not message.fuzzy:
            out[msgid] = text
    return out


def accepted_language(header: str | None) -> str | None:
    """The best of our languages in an ``Accept-Language`` header (``q=0`` means "not this one")."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((header or "")[:500].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if primary in LANGUAGES and weight > 0:
            candidate = (-weight, position, primary)
            best = candidate if best is None or candidate < best else best
    return best[2] if best else None


def pick_language(
    query: str | None,
    cookie: str | None,
    default: str,
    *,
    stored: str | None = None,
    accept: str | None = None,
) -> str:
    """An explicit ``?lang=`` for this page, then the user's stored choice, the cookie (anonymous
    pages), the browser's Accept-Language, and last the configured default (Vietnamese)."""
    for candidate in (query, stored, cookie, accepted_language(accept)):
        if candidate in LANGUAGES:
            return candidate
    return default if default in LANGUAGES else "vi"


class Translator:
    """Texts and formats for one request's language and time zone."""

    def __init__(self, lang: str, tz: ZoneInfo) -> None:
        self.lang = lang if lang in LANGUAGES else "vi"
        self.tz = tz
        self._messages = catalogue(self.lang)

    def gettext(self, msgid: str) -> str:
        text = self._messages.get(msgid)
        if text is None:
            if (self.lang, msgid) not in MISSING:
                MISSING.add((self.lang, msgid))
                log.warning("no %s translation for %r", self.lang, msgid)
            return msgid
        return text

    __call__ = gettext

    def when(self, ts: datetime | None) -> str:
        """A stored UTC time in the user's zone (dd/mm/yyyy in Vietnamese)."""
        if ts is None:
            return ""
        return format_datetime(ts.astimezone(self.tz), _DATETIME_PATTERN[self.lang], locale=self.lang)

    def day(self, d: date | datetime | None) -> str:
        if d is None:
            return ""
        if isinstance(d, datetime):
            d = d.astimezone(self.tz).date()
        return format_date(d, _DATE_PATTERN[self.lang], locale=self.lang)

    def num(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.lang)

    def pct(self, value: float | None) -> str:
        return "" if value is None else format_decimal(round(value * 100, 1), locale=self.lang) + " %"
