"""NetFlow v5, v9 and IPFIX export packets -> record tuples, with templates and sequence tracking.

The decoder never raises on input: a malformed set is counted and decoding stops at that set
(its length can no longer be trusted to find the next one), keeping every record decoded before
it. Output stays as tuples in template order; turning them into events is :mod:`events`' job, so
the hot loop allocates one tuple per record and nothing else.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any

from collector.netflow.sequence import SequenceTracker
from collector.netflow.templates import FieldSpec, HeldSet, Template, TemplateCache

_V5_HEADER = struct.Struct("!HHIIIIBBH")
_V9_HEADER = struct.Struct("!HHIIII")
_IPFIX_HEADER = struct.Struct("!HHIII")
_SET_HEADER = struct.Struct("!HH")
_PAIR = struct.Struct("!HH")
_TRIPLE = struct.Struct("!HHH")
_U32 = struct.Struct("!I")

_PAD = -1  # enterprise marker for v5 pad bytes: skipped like an unknown enterprise element
# v5 record layout as (element, length); element 0 is padding, skipped like an enterprise field.
_V5_LAYOUT = ((8, 4), (12, 4), (15, 4), (10, 2), (14, 2), (2, 4), (1, 4), (22, 4), (21, 4), (7, 2), (11, 2),
              (0, 1), (6, 1), (4, 1), (5, 1), (16, 2), (17, 2), (9, 1), (13, 1), (0, 2))  # fmt: skip
V5_TEMPLATE = Template(
    0,
    tuple(FieldSpec(ie, length, enterprise=_PAD if ie == 0 else 0) for ie, length in _V5_LAYOUT),
    options=False,
    version=5,
)
V5_RECORD = 48
V5_MAX_COUNT = 30


@dataclass(frozen=True, slots=True)
class PacketContext:
    """What every record of one export packet shares (and its event id is derived from)."""

    exporter: str
    version: int
    domain: int
    sequence: int
    export_secs: int
    export_nsecs: int = 0
    uptime_ms: int | None = None  # v5/v9 header sysUptime
    options: dict[str, int] = field(default_factory=dict, compare=False)  # live per-domain options


@dataclass(slots=True)
class RecordBatch:
    context: PacketContext
    template: Template
    records: list[tuple[Any, ...]]
    set_index: int


@dataclass
class DecodeStats:
    packets: int = 0
    records: int = 0
    options_records: int = 0
    malformed_packets: int = 0
    malformed_sets: int = 0
    unsupported_version: int = 0
    missing: dict[int, int] = field(default_factory=lambda: {5: 0, 9: 0, 10: 0})  # flows / packets / records


@dataclass
class DecodeResult:
    batches: list[RecordBatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    missing: int = 0  # units lost before this packet, per the sequence numbers

    @property
    def record_count(self) -> int:
        return sum(len(b.records) for b in self.batches)


class FlowDecoder:
    """Stateful (templates, sequences) decoder for the packets of any number of exporters."""

    def __init__(self, template_timeout: float = 1800.0, *, max_held: int = 64, hold_seconds: float = 30.0) -> None:
        self.templates = TemplateCache(template_timeout, max_held=max_held, hold_seconds=hold_seconds)
        self.sequences = SequenceTracker()
        self.stats = DecodeStats()

    def decode(self, data: bytes, exporter: str, now: float | None = None) -> DecodeResult:
        now = time.monotonic() if now is None else now
        result = DecodeResult()
        self.stats.packets += 1
        try:
            version = _PAIR.unpack_from(data)[0] if len(data) >= 4 else -1
            if version == 5:
                self._v5(data, exporter, result)
            elif version == 9:
                self._v9(data, exporter, now, result)
            elif version == 10:
                self._ipfix(data, exporter, now, result)
            else:
                self.stats.unsupported_version += 1
                result.errors.append(f"unsupported version {version}")
        except (struct.error, ValueError, IndexError) as exc:  # a header shorter than it claims
            result.errors.append(f"malformed packet: {exc}")
        if result.errors:
            self.stats.malformed_packets += 1
        self.stats.records += result.record_count
        return result

    # -- v5 ----------------------------------------------------------------------------------------
    def _v5(self, data: bytes, exporter: str, result: DecodeResult) -> None:
        _v, count, uptime, secs, nsecs, seq, engine_type, engine_id, sampling = _V5_HEADER.unpack_from(data)
        domain = engine_type << 8 | engine_id
        fits = (len(data) - _V5_HEADER.size) // V5_RECORD
        if count > V5_MAX_COUNT or count > fits:
            result.errors.append(f"v5 header says {count} records, packet holds {fits}")
            count = min(count, fits, V5_MAX_COUNT)
        dom = self.templates.domain(exporter, domain)
        if sampling & 0x3FFF:
            dom.options["sampling_interval"] = sampling & 0x3FFF
        ctx = PacketContext(exporter, 5, domain, seq, secs, nsecs, uptime, dom.options)
        body = memoryview(data)[_V5_HEADER.size : _V5_HEADER.size + count * V5_RECORD]
        records = V5_TEMPLATE.decode(body)
        if records:
            result.batches.append(RecordBatch(ctx, V5_TEMPLATE, records, 0))
        self._sequence(result, exporter, 5, domain, seq, len(records) if not result.errors else None)

    # -- v9 ----------------------------------------------------------------------------------------
    def _v9(self, data: bytes, exporter: str, now: float, result: DecodeResult) -> None:
        _v, _count, uptime, secs, seq, source_id = _V9_HEADER.unpack_from(data)
        dom = self.templates.domain(exporter, source_id)
        ctx = PacketContext(exporter, 9, source_id, seq, secs, 0, uptime, dom.options)
        self._sets(data, _V9_HEADER.size, len(data), ctx, now, result)
        self._sequence(result, exporter, 9, source_id, seq, 1)

    # -- IPFIX ------------------------------------------------------------------------------------
    def _ipfix(self, data: bytes, exporter: str, now: float, result: DecodeResult) -> None:
        _v, length, secs, seq, domain = _IPFIX_HEADER.unpack_from(data)
        end = len(data)
        if length < _IPFIX_HEADER.size or length > end:
            result.errors.append(f"IPFIX length {length} does not match the datagram ({end} bytes)")
        else:
            end = length
        dom = self.templates.domain(exporter, domain)
        ctx = PacketContext(exporter, 10, domain, seq, secs, 0, None, dom.options)
        counted = self._sets(data, _IPFIX_HEADER.size, end, ctx, now, result)
        self._sequence(result, exporter, 10, domain, seq, counted)

    def _sequence(
        self, result: DecodeResult, exporter: str, version: int, domain: int, seq: int, count: int | None
    ) -> None:
        missing = self.sequences.observe(exporter, version, domain, seq, count)
        if missing:
            result.missing = missing
            self.stats.missing[version] += missing

    # -- sets (v9 and IPFIX share the layout) ---------------------------------------------------------
    def _sets(
        self, data: bytes, off: int, end: int, ctx: PacketContext, now: float, result: DecodeResult
    ) -> int | None:
        """Walk the sets; returns the data records seen, or None when some could not be decoded."""
        ipfix = ctx.version == 10
        template_ids, options_ids = (2, 3) if ipfix else (0, 1)
        dom = self.templates.domain(ctx.exporter, ctx.domain)
        view = memoryview(data)
        counted: int | None = 0
        index = 0
        while off + 4 <= end:
            set_id, set_len = _SET_HEADER.unpack_from(data, off)
            if set_len < 4 or off + set_len > end:
                self.stats.malformed_sets += 1
                result.errors.append(f"set {set_id} length {set_len} runs past the packet")
                return None
            body_start, off = off + 4, off + set_len
            try:
                if set_id == template_ids:
                    for tid in self._templates(data, body_start, off, ctx.version, dom, now, options=False):
                        self._release(dom, tid, result)
                elif set_id == options_ids:
                    for tid in self._templates(data, body_start, off, ctx.version, dom, now, options=True):
                        self._release(dom, tid, result)
                elif set_id >= 256:
                    n = self._data(view[body_start:off], set_id, ctx, index, dom, now, result)
                    counted = None if n is None or counted is None else counted + n
                else:
                    result.errors.append(f"reserved set id {set_id}")
                    self.stats.malformed_sets += 1
            except (struct.error, ValueError) as exc:
                self.stats.malformed_sets += 1
                result.errors.append(f"set {set_id}: {exc}")
                if set_id >= 256:
                    counted = None
            index += 1
        return counted

    def _data(
        self,
        body: memoryview,
        set_id: int,
        ctx: PacketContext,
        index: int,
        dom: Any,
        now: float,
        result: DecodeResult,
    ) -> int | None:
        template = self.templates.lookup(dom, set_id, now)
        if template is None:
            self.templates.hold(dom, HeldSet(set_id, bytes(body), (ctx, index), now))
            return None
        records = template.decode(body)
        self._emit(template, records, ctx, index, dom, result)
        return len(records)

    def _emit(
        self, template: Template, records: list[tuple[Any, ...]], ctx: PacketContext, index: int, dom: Any,
        result: DecodeResult,
    ) -> None:  # fmt: skip
        if template.options:
            self.stats.options_records += len(records)
            for record in records:
                _remember_options(dom.options, template, record)
        elif records:
            result.batches.append(RecordBatch(ctx, template, records, index))

    def _release(self, dom: Any, template_id: int, result: DecodeResult) -> None:
        for held in self.templates.release(dom, template_id):
            template = dom.templates[template_id]
            ctx, index = held.context
            try:
                self._emit(template, template.decode(held.body), ctx, index, dom, result)
            except ValueError as exc:
                self.stats.malformed_sets += 1
                result.errors.append(f"held set {template_id}: {exc}")

    def _templates(
        self, data: bytes, off: int, end: int, version: int, dom: Any, now: float, *, options: bool
    ) -> list[int]:
        """Learn every template record in a template/options set; returns the ids learned."""
        learned: list[int] = []
        cache = self.templates
        while end - off >= 4:
            if version == 9 and options:
                tid, scope_len, option_len = _TRIPLE.unpack_from(data, off)
                off += 6
                if scope_len % 4 or option_len % 4 or off + scope_len + option_len > end:
                    raise ValueError(f"options template {tid} has bad lengths")
                fields = [
                    FieldSpec(ie, length, scope=i < scope_len // 4)
                    for i, (ie, length) in enumerate(_PAIR.iter_unpack(data[off : off + scope_len + option_len]))
                ]
                off += scope_len + option_len
            else:
                tid, count = _PAIR.unpack_from(data, off)
                off += 4
                scope_count = 0
                if options and version == 10:
                    if count == 0:
                        cache.withdraw(dom, None if tid == 3 else tid, options=True)
                        continue
                    scope_count = _PAIR.unpack_from(data, off)[0]
                    off += 2
                if count == 0:
                    if version == 10:
                        cache.withdraw(dom, None if tid == 2 else tid, options=False)
                        continue
                    if tid == 0:  # v9 padding at the end of the set
                        break
                fields = []
                for i in range(count):
                    if off + 4 > end:
                        raise ValueError(f"template {tid} runs past its set")
                    ie, length = _PAIR.unpack_from(data, off)
                    off += 4
                    enterprise = 0
                    if version == 10 and ie & 0x8000:
                        if off + 4 > end:
                            raise ValueError(f"template {tid} runs past its set")
                        enterprise = _U32.unpack_from(data, off)[0]
                        ie &= 0x7FFF
                        off += 4
                    fields.append(FieldSpec(ie, length, enterprise, scope=i < scope_count))
            if tid < 256:
                raise ValueError(f"template id {tid} is reserved")
            template = Template(tid, tuple(fields), options=options, version=version)
            if template.min_length == 0:
                raise ValueError(f"template {tid} describes empty records")
            cache.learn(dom, template, now)
            learned.append(tid)
        return learned

    def expire_held(self, now: float | None = None) -> None:
        self.templates.expire_all_held(time.monotonic() if now is None else now)


def _remember_options(options: dict[str, int], template: Template, record: tuple[Any, ...]) -> None:
    """Keep what later flow records need from an options record (sampling, system init time)."""
    for spec_name, value in zip(template.names, record, strict=False):
        if not isinstance(value, int):
            continue
        if spec_name in ("sampling_interval", "flow_sampler_random_interval", "sampling_packet_interval"):
            options["sampling_interval"] = value
        elif spec_name == "system_init_time_milliseconds":
            options["system_init_ms"] = value
