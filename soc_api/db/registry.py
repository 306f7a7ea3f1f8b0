"""Import every ``models`` module of the soc_api package, so ``Base.metadata`` knows all tables.

Alembic's environment and the schema tests need the complete metadata; areas that add tables
(``soc_api/<area>/models.py``) are picked up without editing a central list.
"""

from __future__ import annotations

import importlib
import pkgutil

import soc_api


def load_all_models() -> list[str]:
    """Import ``soc_api.db.models`` and every ``soc_api.<...>.models``; return the module names."""
    names = ["soc_api.db.models"]
    for info in pkgutil.walk_packages(soc_api.__path__, prefix="soc_api."):
        if info.name.rsplit(".", 1)[-1] == "models" and info.name not in names:
            names.append(info.name)
    for name in names:
        importlib.import_module(name)
    return names
