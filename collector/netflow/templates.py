"""Templates (RFC 3954 / RFC 7011) compiled once into a ``struct.Struct``, and the per-domain cache.

Decoding speed comes from here: a fixed-length template becomes one precompiled struct, so a data
set is a single ``iter_unpack`` over the buffer. Enterprise-specific elements we cannot interpret
become pad bytes (``x``) in that struct: skipped at no cost, never misaligning the fields after
them. Only templates with variable-length elements fall back to a per-record walk.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from collector.netflow.fields import V9_SCOPES, Kind, element

VARIABLE = 0xFFFF
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    ie_id: int
    length: int
    enterprise: int = 0  # 0 = IANA element
    scope: bool = False


@dataclass(slots=True)
class Template:
    """A compiled template; ``names``/``kinds`` line up with the values a record decodes to."""

    template_id: int
    fields: tuple[FieldSpec, ...]
    options: bool
    version: int
    names: tuple[str, ...] = ()
    kinds: tuple[Kind, ...] = ()
    record_struct: struct.Struct | None = None  # None: has variable-length fields
    min_length: int = 0
    received_at: float = 0.0
    # compiled event builders by uptime mode (collector.netflow.events); filled on first data set
    builders: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        kinds: list[Kind] = []
        fmt = ["!"]
        variable = False
        length = 0
        for spec in self.fields:
            if spec.length == VARIABLE:
                variable = True
                length += 1
            else:
                length += spec.length
            if spec.enterprise:
                fmt.append(f"{spec.length}x")
                continue
            if self.version == 9 and spec.scope:
                name, kind = V9_SCOPES.get(spec.ie_id, f"scope_{spec.ie_id}"), Kind.UNSIGNED
            else:
                name, kind = element(spec.ie_id)
            names.append(name)
            kinds.append(kind)
            code = _INT_CODES.get(spec.length) if kind is Kind.UNSIGNED else None
            fmt.append(code or f"{spec.length}s")
        self.names, self.kinds, self.min_length = tuple(names), tuple(kinds), length
        self.record_struct = None if variable else struct.Struct("".join(fmt))

    def decode(self, data: bytes | memoryview) -> list[tuple[Any, ...]]:
        """All records in a set body; trailing padding shorter than a record is ignored.

        Raises ``ValueError`` when a variable-length record runs past the end of the set.
        """
        if self.min_length == 0:
            raise ValueError("template has no length")
        st = self.record_struct
        if st is not None:
            count = len(data) // st.size
            if count == 0:
                return []
            return list(st.iter_unpack(data[: count * st.size]))
        return _decode_variable(self.fields, data)


def _decode_variable(fields: tuple[FieldSpec, ...], data: bytes | memoryview) -> list[tuple[Any, ...]]:
    """RFC 7011 section 7: a length of 255 in the first byte means a 2-byte length follows."""
    buf = bytes(data)
    records: list[tuple[Any, ...]] = []
    pos, end = 0, len(buf)
    minimum = sum(1 if f.length == VARIABLE else f.length for f in fields)
    while end - pos >= minimum and minimum > 0:
        values: list[Any] = []
        for spec in fields:
            length = spec.length
            if length == VARIABLE:
                if pos >= end:
                    raise ValueError("variable-length field past the end of the set")
                length = buf[pos]
                pos += 1
                if length == 255:
                    if pos + 2 > end:
                        raise ValueError("variable-length field past the end of the set")
                    length = int.from_bytes(buf[pos : pos + 2], "big")
                    pos += 2
            if pos + length > end:
                raise ValueError("field past the end of the set")
            if not spec.enterprise:
                raw = buf[pos : pos + length]
                values.append(int.from_bytes(raw, "big") if length in _INT_CODES and _is_int(spec) else raw)
            pos += length
        records.append(tuple(values))
    return records


def _is_int(spec: FieldSpec) -> bool:
    return element(spec.ie_id)[1] is Kind.UNSIGNED


@dataclass(slots=True)
class HeldSet:
    """A data set whose template has not arrived yet, with what its event ids need."""

    template_id: int
    body: bytes
    context: Any
    held_at: float


@dataclass
class Domain:
    """What one exporter's observation domain (IPFIX) / source id (v9) has told us."""

    templates: dict[int, Template] = field(default_factory=dict)
    options: dict[str, int] = field(default_factory=dict)  # sampling_interval, system_init_ms
    held: deque[HeldSet] = field(default_factory=deque)


@dataclass
class TemplateStats:
    templates_learned: int = 0
    templates_refreshed: int = 0
    templates_expired: int = 0
    templates_withdrawn: int = 0
    sets_held: int = 0
    sets_released: int = 0
    sets_dropped_no_template: int = 0


class TemplateCache:
    """Templates per (exporter, domain), expiring after ``timeout`` seconds without a refresh.

    Data sets that arrive before their template are held (at most ``max_held`` per domain, for
    at most ``hold_seconds``); beyond that they are counted as dropped, never silently lost.
    """

    def __init__(self, timeout: float, *, max_held: int = 64, hold_seconds: float = 30.0) -> None:
        self.timeout = timeout
        self.max_held = max_held
        self.hold_seconds = hold_seconds
        self.domains: dict[tuple[str, int], Domain] = {}
        self.stats = TemplateStats()

    def domain(self, exporter: str, domain_id: int) -> Domain:
        key = (exporter, domain_id)
        dom = self.domains.get(key)
        if dom is None:
            dom = self.domains[key] = Domain()
        return dom

    def learn(self, dom: Domain, template: Template, now: float | None = None) -> None:
        template.received_at = time.monotonic() if now is None else now
        old = dom.templates.get(template.template_id)
        if old is None:
            self.stats.templates_learned += 1
        else:
            self.stats.templates_refreshed += 1
        dom.templates[template.template_id] = template

    def withdraw(self, dom: Domain, template_id: int | None, options: bool) -> None:
        """Remove one template, or (``template_id`` None) all data or all options templates."""
        if template_id is not None:
            if dom.templates.pop(template_id, None) is not None:
                self.stats.templates_withdrawn += 1
            return
        for tid in [t.template_id for t in dom.templates.values() if t.options == options]:
            del dom.templates[tid]
            self.stats.templates_withdrawn += 1

    def lookup(self, dom: Domain, template_id: int, now: float | None = None) -> Template | None:
        template = dom.templates.get(template_id)
        if template is None:
            return None
        now = time.monotonic() if now is None else now
        if now - template.received_at > self.timeout:
            del dom.templates[template_id]
            self.stats.templates_expired += 1
            return None
        return template

    def hold(self, dom: Domain, held: HeldSet) -> None:
        self.expire_held(dom, held.held_at)
        if len(dom.held) >= self.max_held:
            dom.held.popleft()
            self.stats.sets_dropped_no_template += 1
        dom.held.append(held)
        self.stats.sets_held += 1

    def release(self, dom: Domain, template_id: int) -> list[HeldSet]:
        """Held sets now decodable with the newly learned ``template_id``."""
        if not dom.held:
            return []
        ready = [h for h in dom.held if h.template_id == template_id]
        if ready:
            dom.held = deque(h for h in dom.held if h.template_id != template_id)
            self.stats.sets_released += len(ready)
        return ready

    def expire_held(self, dom: Domain, now: float) -> None:
        while dom.held and now - dom.held[0].held_at > self.hold_seconds:
            dom.held.popleft()
            self.stats.sets_dropped_no_template += 1

    def expire_all_held(self, now: float) -> None:
        for dom in self.domains.values():
            self.expire_held(dom, now)
