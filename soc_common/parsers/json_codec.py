"""Compact JSON for the hot paths (agent spool, collector ingest, event store), orjson when present.

Encoding and decoding events is the largest single cost of moving them (about a third of the
collector's CPU per event with the standard library). orjson does the same work 4-8x faster, but it
is an optional accelerator: without it, or for the rare value it refuses or would read differently
(integers beyond 64 bits, lone surrogates, NaN), the standard library does the work, so behaviour
never depends on whether it is installed.

Output is compact, UTF-8 (no ``\\u`` escapes), and unknown objects are written as ``str(value)``.
Non-finite floats become ``null`` with orjson and ``NaN``/``Infinity`` with the fallback; neither
reaches here from a parser (they only produce finite numbers).
"""

from __future__ import annotations

import json
from typing import Any

try:  # pragma: no cover - exercised by whichever branch is installed
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

_STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)

HAS_ORJSON = _orjson is not None
# orjson reads integers beyond 64 bits as floats, losing digits; the standard library keeps them.
# Any run of 19 digits (strings included: false positives only cost time) sends a document there.
# Found by mapping digits to "0" and everything else to a space, then searching for 19 zeros: a
# tenth of the cost of a regex (the spaces keep the search from stopping on near misses).
_NINETEEN_ZEROS = b"0" * 19
_DIGITS_ONLY = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))


def has_long_number(data: bytes | str) -> bool:
    """True when ``data`` holds a run of 19 or more digits (a number orjson might read inexactly)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    return raw.translate(_DIGITS_ONLY).find(_NINETEEN_ZEROS) >= 0


def long_number_offsets(data: bytes) -> list[int]:
    """Where runs of 19 or more digits start in ``data``, ascending (usually none).

    One scan can vouch for many documents at once (an NDJSON body): only those holding an offset
    need the careful decoder. Hex blobs in Windows event XML make one such line per few hundred.
    """
    marked = data.translate(_DIGITS_ONLY)
    offsets: list[int] = []
    at = marked.find(_NINETEEN_ZEROS)
    while at >= 0:
        offsets.append(at)
        at = marked.find(_NINETEEN_ZEROS, at + 19)
    return offsets


def _stdlib_bytes(obj: Any) -> bytes:
    return _STDLIB.encode(obj).encode("utf-8", "surrogatepass")


if _orjson is not None:
    # Datetimes and dataclasses go through ``default=str`` as with the standard library, so the
    # text does not depend on which encoder is installed. Not OPT_NON_STR_KEYS: it made orjson check
    # every key and took half its time on an event (0.7 of 1.5 µs for a flow); the rare document
    # with a non-string key is refused by orjson and written by the standard library instead.
    _OPTS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
    _orjson_dumps = _orjson.dumps
    _orjson_loads = _orjson.loads
    _OrjsonEncodeError = _orjson.JSONEncodeError

    def dumps_bytes(obj: Any) -> bytes:
        """Compact UTF-8 JSON bytes of ``obj``."""
        try:
            return _orjson_dumps(obj, default=str, option=_OPTS)
        except _OrjsonEncodeError:
            return _stdlib_bytes(obj)

    def dumps(obj: Any) -> str:
        """Compact JSON text of ``obj`` (non-ASCII kept as is)."""
        try:
            return _orjson_dumps(obj, default=str, option=_OPTS).decode("utf-8")
        except _OrjsonEncodeError:
            return _STDLIB.encode(obj)

    def loads(data: bytes | str) -> Any:
        """Decode one JSON document; ``ValueError`` (or ``RecursionError``) when it is not valid."""
        if has_long_number(data):
            return json.loads(data)  # a number orjson would silently turn into a float
        return loads_short_numbers(data)

    def loads_short_numbers(data: bytes | str) -> Any:
        """:func:`loads` for a document the caller has vouched for (:func:`long_number_offsets`)."""
        try:
            return _orjson_loads(data)
        except ValueError:
            # orjson is stricter than the standard library (NaN, lone surrogates, deep nesting):
            # give the permissive decoder the last word so both installs accept the same input.
            return json.loads(data)

else:  # pragma: no cover - the fallback branch when orjson is absent

    def dumps_bytes(obj: Any) -> bytes:
        """Compact UTF-8 JSON bytes of ``obj``."""
        return _stdlib_bytes(obj)

    def dumps(obj: Any) -> str:
        """Compact JSON text of ``obj`` (non-ASCII kept as is)."""
        return _STDLIB.encode(obj)

    def loads(data: bytes | str) -> Any:
        """Decode one JSON document; raises ``ValueError`` when it is not valid JSON."""
        return json.loads(data)

    loads_short_numbers = loads
