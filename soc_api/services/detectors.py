"""Anomaly detector settings as the SOC API shows and changes them.

The collector's anomaly engine re-reads the per-site overrides from its state database at every
cycle, so the API only has to write them there (through :class:`AnomalyState`, which keeps the
anomaly audit table): no restart, no second copy of the settings. The API does not see the
collector's config file, so defaults shown here are the built-in ones; ``[anomaly.sites...]``
entries in collector.toml still apply underneath API overrides.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collector.anomaly.settings import DETECTOR_PARAMS, AnomalySettings, DetectorParams, merge_params
from collector.anomaly.state import AnomalyState
from soc_api.config import ApiConfig

_DEFAULTS = AnomalySettings()
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")
_COMMENT_LINE = re.compile(r"^\s+#\s*(.*)$")


def state_path(config: ApiConfig) -> Path:
    """``anomaly_state`` from the API config, else the collector's default in a shared data dir."""
    configured = getattr(config, "anomaly_state", None)
    return Path(configured) if configured else config.data_dir / "collector" / "anomaly.db"


@contextmanager
def open_state(config: ApiConfig) -> Iterator[AnomalyState]:
    """One short-lived connection per request: the collector owns the file, WAL lets both use it."""
    state = AnomalyState(state_path(config))
    try:
        yield state
    finally:
        state.close()


def known(detector: str) -> bool:
    return detector in DETECTOR_PARAMS


def defaults(detector: str) -> DetectorParams:
    return _DEFAULTS.params(detector)


def _comments(model: type[DetectorParams]) -> dict[str, str]:
    """Field -> its source comment (trailing, or the comment lines just above it), base classes first.

    The parameter models document their fields in comments next to the defaults; reading them keeps
    one source of truth instead of a second copy of every explanation here.
    """
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, DetectorParams)):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines[1:]:
            comment = _COMMENT_LINE.match(line)
            if comment:
                pending.append(comment.group(1).strip())
                continue
            field = _FIELD_LINE.match(line)
            if field and field.group(1) in cls.model_fields:
                doc = (field.group(2) or " ".join(pending)).strip()
                name = field.group(1)
                if doc and out.get(name, doc) != doc:  # a subclass note adds to the base meaning
                    out[name] = f"{out[name]} ({cls.__name__}: {doc})"
                elif doc:
                    out[name] = doc
            pending = []
    return out


@dataclass(frozen=True)
class ParameterDoc:
    name: str
    default: Any
    schema: dict[str, Any]  # JSON schema of the value: type and bounds
    doc: str


def parameters(detector: str) -> list[ParameterDoc]:
    base = defaults(detector)
    model = type(base)
    schema = model.model_json_schema()
    props: dict[str, Any] = schema.get("properties", {})
    docs = _comments(model)
    dumped = base.model_dump(mode="json")
    out = []
    for name in model.model_fields:
        prop = {k: v for k, v in props.get(name, {}).items() if k not in ("title", "default")}
        if "$defs" in schema and ("$ref" in json.dumps(prop)):
            prop["$defs"] = schema["$defs"]
        out.append(ParameterDoc(name, dumped.get(name), prop, docs.get(name, "")))
    return out


def description(detector: str) -> str:
    return inspect.cleandoc(type(defaults(detector)).__doc__ or "")


class OverrideInvalid(ValueError):
    """An override the detector's parameter model refuses; ``errors`` lists each bad parameter."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.errors = errors


def validate_override(detector: str, params: dict[str, Any]) -> dict[str, Any]:
    """The override as given (only the parameters sent), after checking it against the model."""
    model = type(defaults(detector))
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        errors = [{"loc": ["params", name], "msg": "unknown parameter"} for name in unknown[:20]]
        raise OverrideInvalid(f"unknown parameter(s) for {detector}: {', '.join(unknown[:20])}", errors)
    try:
        merged = merge_params(defaults(detector), params)
    except ValidationError as exc:
        errors = [
            {"loc": ["params", *(str(p) for p in e.get("loc", ()))], "msg": str(e.get("msg", ""))}
            for e in exc.errors()[:20]
        ]
        raise OverrideInvalid(f"invalid value(s) for {detector}", errors) from None
    # Keep the caller's keys, normalised (e.g. "10m" -> 600.0), so the stored override is canonical.
    normalised = merged.model_dump(mode="json")
    return {name: normalised[name] for name in params}


def etag(params: dict[str, Any] | None) -> str | None:
    if params is None:
        return None
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'


def override_changes(state: AnomalyState, detector: str, limit: int) -> list[dict[str, Any]]:
    """Newest first. Changes are rare human acts, so reading a generous tail and filtering is cheap."""
    return [e for e in state.override_audit(max(limit * 20, 10_000)) if e["detector"] == detector]
