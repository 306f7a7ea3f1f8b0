"""Compiled per-template builders against the generic builder, on random templates and records.

The generic builder is the reference (it is what the golden fixture was made with); any template
shape, field length, time encoding, uptime anchor or sampling interval must give the same events,
key order included.
"""

from __future__ import annotations

import json
import random
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.flows.events import iso_ts
from collector.netflow import eventparts, events
from collector.netflow.decoder import PacketContext, RecordBatch
from collector.netflow.events import batch_events
from collector.netflow.fields import ELEMENTS, Kind
from collector.netflow.templates import FieldSpec, Template

_NATURAL = {Kind.UNSIGNED: (1, 2, 4, 8), Kind.IPV4: (4,), Kind.IPV6: (16,), Kind.MAC: (6,), Kind.STRING: (8, 16)}
_ODD_LENGTHS = (0, 3, 5, 7, 9, 16)
# Elements the builder reads by name get picked more often than the rest of the table.
_READ = (1, 2, 4, 6, 7, 8, 10, 11, 12, 14, 21, 22, 27, 28, 32, 34, 60, 85, 86, 139, 150, 151, 152, 153, 154, 155,
         156, 157, 158, 159)  # fmt: skip


def _as_text(built: list[Any]) -> str:
    return json.dumps(built, ensure_ascii=False)


def _build(batch: RecordBatch, *, compiled: bool) -> str:
    try:
        return _as_text(batch_events(batch, compiled=compiled))
    except Exception as exc:  # both builders must fail the same way on the same record
        return f"error {type(exc).__name__}"


@st.composite
def template_fields(draw: st.DrawFn, version: int) -> tuple[FieldSpec, ...]:
    count = draw(st.integers(1, 14))
    fields = []
    for _ in range(count):
        ie = draw(st.sampled_from(_READ) | st.sampled_from(sorted(ELEMENTS)) | st.integers(1, 600))
        kind = ELEMENTS.get(ie, ("", Kind.UNSIGNED))[1]
        length = draw(st.sampled_from(_NATURAL.get(kind, (4,))) | st.sampled_from(_ODD_LENGTHS))
        enterprise = 29305 if version == 10 and draw(st.integers(0, 9)) == 0 else 0
        fields.append(FieldSpec(ie, length, enterprise))
    if sum(f.length for f in fields) == 0:
        fields.append(FieldSpec(7, 2))
    return tuple(fields)


def _record(rnd: random.Random, template: Template) -> bytes:
    """Random bytes, with protocol and times steered towards the values that take branches."""
    out = b""
    for spec in template.fields:
        value = bytearray(rnd.randrange(256) for _ in range(spec.length))
        if not spec.enterprise and spec.length:
            if spec.ie_id == 4:
                value[-1] = rnd.choice([6, 17, 1, 58, 132, 47, 0])
                value[:-1] = bytes(len(value) - 1) if rnd.random() < 0.8 else value[:-1]
            elif spec.ie_id in (152, 153, 150, 151) and spec.length == 8 and rnd.random() < 0.8:
                scale = 1000 if spec.ie_id in (152, 153) else 1
                value = bytearray((1_700_000_000 * scale + rnd.randrange(10**6)).to_bytes(8, "big"))
            elif spec.ie_id in (150, 151) and spec.length == 4 and rnd.random() < 0.8:
                value = bytearray((1_700_000_000 + rnd.randrange(10**6)).to_bytes(4, "big"))
            elif spec.ie_id in (154, 155, 156, 157) and spec.length == 8 and rnd.random() < 0.8:
                value = bytearray(((1_700_000_000 + 2_208_988_800) << 32 | rnd.randrange(1 << 32)).to_bytes(8, "big"))
            elif spec.ie_id in (7, 11, 6, 60) and rnd.random() < 0.5:
                value = bytearray(bytes(len(value) - 1) + bytes([rnd.choice([0, 6, 4, 80])]))
        out += bytes(value)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from([9, 10]),
    data=st.data(),
    seed=st.integers(0, 2**32),
    uptime=st.none() | st.integers(0, 2**32 - 1),
    init=st.none() | st.integers(0, 1_800_000_000_000),
    sampling=st.none() | st.sampled_from([0, 1, 100]),
)
def test_compiled_builder_matches_the_generic_one(
    version: int, data: st.DataObject, seed: int, uptime: int | None, init: int | None, sampling: int | None
) -> None:
    fields = data.draw(template_fields(version))
    template = Template(300, fields, options=False, version=version)
    rnd = random.Random(seed)
    records = template.decode(b"".join(_record(rnd, template) for _ in range(rnd.randrange(1, 6))))
    options: dict[str, int] = {}
    if init is not None:
        options["system_init_ms"] = init
    if sampling is not None:
        options["sampling_interval"] = sampling
    ctx = PacketContext("192.0.2.7", version, 3, 41, 1_700_000_123, 0, uptime, options)
    batch = RecordBatch(ctx, template, records, 1)
    with patch.object(events, "COMPILE_BUDGET", events._CompileBudget(per_second=1e9, burst=1e9)):
        assert _build(batch, compiled=True) == _build(batch, compiled=False)
    assert template.builders or not records  # the compiled path really ran


def test_ms_text_is_iso_ts_for_every_millisecond_shape() -> None:
    rnd = random.Random(7)
    samples = [0, 1, 999, 1000, 1_700_000_000_000, 1_700_000_000_999, (1 << 32) * 1000 - 1, (1 << 32) * 1000]
    samples += [rnd.randrange(0, (1 << 32) * 1000) for _ in range(20_000)]
    samples += [-1, -1001, rnd.randrange(1 << 40, 1 << 44)]
    for ms in samples:
        assert eventparts.ms_text(ms) == iso_ts(ms / 1000), ms


def test_caches_stay_bounded() -> None:
    caches = (eventparts.IP4_TEXT, eventparts.IP6_TEXT, eventparts.COMMUNITY_IDS)
    try:
        for cache in caches:
            cache.update({i.to_bytes(4, "big"): "junk" for i in range(eventparts.MAX_ADDRESSES + 1)})
        eventparts.trim_caches()
        assert [len(cache) for cache in caches] == [0, 0, 0]
    finally:
        for cache in caches:
            cache.clear()


def test_compiled_builders_are_shared_across_template_refreshes_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_BUILDERS", {})
    monkeypatch.setattr(events, "_MAX_BUILDERS", 3)
    ctx = PacketContext("192.0.2.7", 10, 0, 1, 1_700_000_000)
    fields = (FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(4, 1))
    first, refreshed = (Template(256, fields, options=False, version=10) for _ in range(2))
    record = [(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 6)]
    batch_events(RecordBatch(ctx, first, record, 0))
    batch_events(RecordBatch(ctx, refreshed, record, 0))
    assert first.builders[0] is refreshed.builders[0]
    for n in range(4):
        other = Template(257 + n, (*fields, FieldSpec(7, (2, 4, 8, 1)[n])), options=False, version=10)
        batch_events(RecordBatch(ctx, other, [(*record[0], 80)], 0))
    assert len(events._BUILDERS) <= 3


def test_events_share_no_mutable_object_but_the_exporter() -> None:
    """Processors mutate events; only ``netflow.exporter`` is shared per data set (as before)."""
    ctx = PacketContext("192.0.2.7", 10, 0, 1, 1_700_000_000)
    fields = (FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(4, 1), FieldSpec(6, 1), FieldSpec(10, 2))
    template = Template(256, fields, options=False, version=10)
    a, b = batch_events(RecordBatch(ctx, template, [(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 6, 2, 1)] * 2, 0))

    def containers(value: Any, path: str = "") -> dict[str, int]:
        found: dict[str, int] = {}
        if isinstance(value, dict | list):
            found[path] = id(value)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                found.update(containers(item, f"{path}/{key}"))
        return found

    ids_a, ids_b = containers(a), containers(b)
    shared = {path for path, ident in ids_a.items() if ids_b.get(path) == ident}
    assert shared == {"/netflow/exporter"}


def test_template_shapes_beyond_the_compile_budget_are_built_generically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_BUILDERS", {})
    monkeypatch.setattr(events, "COMPILE_BUDGET", events._CompileBudget(per_second=0.001, burst=2))
    ctx = PacketContext("192.0.2.7", 10, 0, 1, 1_700_000_000)
    built = []
    for n in range(4):
        fields = (FieldSpec(8, 4), FieldSpec(12, 4), FieldSpec(4, 1), FieldSpec(7, (2, 4, 8, 1)[n]))
        template = Template(256 + n, fields, options=False, version=10)
        batch = RecordBatch(ctx, template, [(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 6, 80)], 0)
        assert _as_text(batch_events(batch)) == _as_text(batch_events(batch, compiled=False))
        built.append(bool(template.builders))
    assert built == [True, True, False, False]
    assert events.COMPILE_BUDGET.refused == 2
