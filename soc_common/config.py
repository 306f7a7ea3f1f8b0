"""Configuration loading shared by every role.

Each role has one pydantic model. Values come, lowest first, from the model's defaults, then the
role's TOML file, then ``SOC_<ROLE>_<KEY>`` environment variables (nested keys joined with ``__``,
for example ``SOC_COLLECTOR_INGEST__PORT=9443``). A wrong value fails at start-up with a one-line
message naming the key and the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

T = TypeVar("T", bound=BaseModel)


class ConfigError(Exception):
    """A configuration that cannot be used; the message is meant for the operator as is."""


class Section(BaseModel):
    """Base for configuration sections: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``; raises ValueError otherwise."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 24h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


#: a settings field given in seconds or as ``"15m"``, ``"24h"``, ``"7d"``
Duration = Annotated[float, BeforeValidator(parse_duration)]


def data_dir_default() -> Path:
    return Path(os.environ.get("SOC_DATA_DIR", "data"))


def _env_overrides(prefix: str) -> dict[str, Any]:
    """Collect ``PREFIX_A__B=value`` variables into ``{"a": {"b": "value"}}``."""
    out: dict[str, Any] = {}
    for name, value in os.environ.items():
        if not name.startswith(prefix):
            continue
        path = name[len(prefix) :].lower().split("__")
        if not path or not path[0]:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: key '{key}': {first['msg']}{more}"


def load_config(model: type[T], path: Path | str | None, role: str) -> T:
    """Load and validate ``model`` for ``role`` from ``path`` (optional) and the environment."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    env_prefix = f"SOC_{role.upper()}_"
    env = _env_overrides(env_prefix)
    if env:
        source = f"{source} + {env_prefix}* environment"
    try:
        return model.model_validate(_merge(raw, env))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
