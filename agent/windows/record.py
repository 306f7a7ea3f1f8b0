"""Shape-tolerant access to a Windows event record held as a dict.

Records arrive in three JSON shapes: the ``evtx`` package's (``{"#attributes": {...}, "#text": ...}``),
its ``separate_json_attributes`` variant (``"Provider_attributes": {...}``) and the common export
shape made by xmltodict-style converters (``{"@Name": ..., "#text": ...}``). These helpers read all
three so the normaliser has one code path, and they never raise on a wrong type: a missing part
reads as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EMPTY: Mapping[str, Any] = {}


def attributes(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The XML attributes of the child element ``key`` (``Provider`` -> ``{"Name": ..., "Guid": ...}``)."""
    node = parent.get(key)
    if isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict):
            return attrs
        if any(k[:1] == "@" for k in node):
            return {k[1:]: v for k, v in node.items() if k[:1] == "@"}
        return node
    attrs = parent.get(key + "_attributes")
    return attrs if isinstance(attrs, dict) else _EMPTY


def element_text(node: Any) -> Any:
    """The text of an element that may carry attributes (``{"#attributes":..., "#text": 7045}``)."""
    if isinstance(node, dict):
        return node.get("#text")
    return node


def to_text(value: Any) -> Any:
    """Render a field value the way the XML record spells it.

    The ``evtx`` JSON types numbers and booleans while the rendered XML (the live API) has only
    text; Sigma rules compare against the XML spelling, so both paths meet at strings. Lists stay
    lists (repeated elements), each item rendered.
    """
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return to_text(value.get("#text"))
    if isinstance(value, list | tuple):
        return [to_text(v) for v in value]
    return str(value)


def to_int(value: Any) -> int | None:
    """An integer from ``4624``, ``"4624"`` or ``"0x1a2b"``; ``None`` when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text[:2] in ("0x", "0X") else int(text)
        except ValueError:
            return None
    if isinstance(value, dict):
        return to_int(value.get("#text"))
    return None


def _add_unnamed(out: dict[str, Any], values: Any) -> None:
    """Unnamed ``<Data>`` items become ``param1``, ``param2``, ... (the Event Viewer's naming)."""
    items = values if isinstance(values, list) else [values]
    start = sum(1 for k in out if k.startswith("param")) + 1
    for offset, item in enumerate(items):
        out[f"param{start + offset}"] = to_text(item)


def _add_data_item(out: dict[str, Any], item: Any) -> None:
    """One ``<Data>`` entry in any shape: named (``@Name`` / ``#attributes.Name``) or unnamed."""
    if isinstance(item, dict):
        name = item.get("@Name")
        if name is None:
            attrs = item.get("#attributes")
            name = attrs.get("Name") if isinstance(attrs, dict) else None
        if name is not None:
            out[str(name)] = to_text(item.get("#text"))
            return
        _add_unnamed(out, item.get("#text"))
        return
    _add_unnamed(out, item)


def _add_fields(out: dict[str, Any], node: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if key == "#attributes" or key[:1] == "@" or key.endswith("_attributes"):
            continue
        if type(value) is str:
            out[key] = value
        elif key == "Data":
            for item in value if isinstance(value, list) else [value]:
                _add_data_item(out, item)
        elif key == "#text":
            if value is not None:
                _add_unnamed(out, value)
        elif isinstance(value, dict) and "#text" not in value:
            # UserData wraps its fields in one element named after the event (LogFileCleared):
            # the fields are what rules address, the wrapper is not.
            _add_fields(out, value)
        else:
            out[key] = to_text(value)


def event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """Every EventData / UserData / ProcessingErrorData field by name, values as in the XML."""
    out: dict[str, Any] = {}
    for key in ("EventData", "UserData", "ProcessingErrorData"):
        node = event.get(key)
        if isinstance(node, dict):
            _add_fields(out, node)
        elif node is not None and not isinstance(node, dict):
            _add_unnamed(out, node)
    return out
