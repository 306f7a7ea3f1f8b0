"""Compatibility import: the page texts and formatting moved to :mod:`soc_api.web.i18n`."""

from soc_api.web.i18n import LANGUAGES, Translator, pick_language

__all__ = ["LANGUAGES", "Translator", "pick_language"]
