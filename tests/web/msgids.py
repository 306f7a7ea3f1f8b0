"""Every msgid the web interface uses: ``_("...")`` in templates, ``N_("...")`` in code."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "soc_api" / "web"
_TEMPLATE = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")
_CODE = re.compile(r"""\bN_\(\s*"((?:[^"\\]|\\.)*)"\s*\)""")


def used_msgids() -> set[str]:
    found: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        for m in _TEMPLATE.finditer(path.read_text(encoding="utf-8")):
            found.add(m.group(1) if m.group(1) is not None else m.group(2))
    for path in [*WEB.rglob("*.py"), WEB.parent / "routers" / "pages.py"]:
        found.update(m.group(1) for m in _CODE.finditer(path.read_text(encoding="utf-8")))
    found.discard("")
    return found
