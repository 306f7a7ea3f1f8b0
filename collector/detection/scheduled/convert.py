"""Compile Sigma rules into Elasticsearch queries for the scheduled path.

The same rule files and the same :func:`collector.detection.pipeline.build_pipeline` as the
streaming engine go through pySigma's Lucene backend, plus two adaptations to our index mapping:

- Sigma string matching is case-insensitive but our strings are ``keyword`` (case-sensitive). A
  detection item whose values are all plain (not ``|cased``) strings on a field with a ``.caseless``
  sub-field is moved to that sub-field and its values are lowercased, so ``Image|endswith: \\WHOAMI.EXE``
  matches ``whoami.exe``. Fields without a ``.caseless`` sub-field stay case-sensitive (documented
  limitation: ``event.action``, ``winlog.channel``... are normalised by our parsers anyway).
- Sigma regular expressions are unanchored searches; Lucene regular expressions match the whole
  value. Patterns are wrapped with ``.*`` unless anchored with ``^``/``$``. Regex flags (``|i``, ``|m``,
  ``|s``) cannot be expressed in a Lucene query string: such rules are skipped with the reason.

Rules the backend cannot convert are listed with the reason and skipped, never fatal. Correlation
rules are planned here (their base rules' queries) and evaluated by :mod:`.correlate`.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaCasedString, SigmaExpansion, SigmaRegularExpression, SigmaString, SigmaType

from collector.detection.ir import UnsupportedRule
from collector.detection.loader import _correlation_spec, _meta, rule_files
from collector.detection.pipeline import build_pipeline, is_logsource_mapped
from collector.detection.specs import CorrelationSpec, RuleMeta, SkippedRule
from collector.store.elastic_mapping import caseless_field

log = logging.getLogger(__name__)

INTERVAL_ATTRIBUTE = "scheduled_interval"  # optional custom attribute in a rule: "10m", "1h", 600


def _is_plain_string(value: SigmaType) -> bool:
    if isinstance(value, SigmaExpansion):
        return all(_is_plain_string(v) for v in value.values)
    return isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString)


def _lowered(value: SigmaType) -> SigmaType:
    if isinstance(value, SigmaExpansion):
        return SigmaExpansion([_lowered(v) for v in value.values])
    assert isinstance(value, SigmaString)
    out = copy.copy(value)
    out.s = [p.lower() if isinstance(p, str) else p for p in value.s]
    return out


class CaselessFieldTransformation(DetectionItemTransformation):
    """Plain string matches on fields with a ``.caseless`` sub-field go to it, lowercased."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetection | SigmaDetectionItem | None:
        name = detection_item.field
        if name is None or not detection_item.value:
            return None
        target = caseless_field(name)
        if target is None or not all(_is_plain_string(v) for v in detection_item.value):
            return None
        detection_item.field = target
        detection_item.value = [_lowered(v) for v in detection_item.value]
        return detection_item


def mapping_pipeline() -> ProcessingPipeline:
    """Runs after the shared ECS pipeline (priority 20): adapts final field names to our mapping."""
    return ProcessingPipeline(
        name="SOC Elasticsearch mapping",
        priority=90,
        items=[ProcessingItem(identifier="soc_es_caseless", transformation=CaselessFieldTransformation())],
    )


def _anchored_for_lucene(pattern: str) -> str:
    """Sigma's unanchored regex -> a whole-value Lucene regex."""
    head = pattern[1:] if pattern.startswith("^") else ".*" + pattern
    ends_anchored = head.endswith("$") and not head.endswith("\\$")
    return head[:-1] if ends_anchored else head + ".*"


class SocLuceneBackend(LuceneBackend):
    """pySigma's Lucene backend with Sigma's regex semantics mapped onto Lucene's."""

    def convert_condition_field_eq_val_re(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        value = cond.value
        if isinstance(value, SigmaRegularExpression):
            if value.flags:
                flags = "".join(sorted(f.name.lower() for f in value.flags))
                raise SigmaFeatureNotSupportedByBackendError(f"regex flags ({flags}) in a Lucene query string")
            if re.match(r"\(\?[a-zA-Z]+\)", str(value.regexp)):
                raise SigmaFeatureNotSupportedByBackendError("inline regex flags in a Lucene query string")
            anchored = SigmaRegularExpression(_anchored_for_lucene(str(value.regexp)))
            cond = ConditionFieldEqualsValueExpression(cond.field, anchored)
            cond.parent = None
        return super().convert_condition_field_eq_val_re(cond, state)


@dataclass(frozen=True)
class ScheduledQuery:
    """A single-event rule as an Elasticsearch Lucene query."""

    meta: RuleMeta
    lucene: str
    emit: bool = True  # False when only correlations consume it (Sigma ``generate: false``)
    interval_seconds: float | None = None  # from the rule's ``scheduled_interval`` attribute

    def dsl(self) -> dict[str, Any]:
        return lucene_dsl(self.lucene)


@dataclass(frozen=True)
class ScheduledCorrelation:
    """A correlation rule with the queries of the rules it counts."""

    spec: CorrelationSpec
    bases: tuple[ScheduledQuery, ...]
    interval_seconds: float | None = None

    @property
    def meta(self) -> RuleMeta:
        return self.spec.meta


@dataclass
class CompiledRules:
    """What compiled, what did not (with reasons)."""

    queries: list[ScheduledQuery] = field(default_factory=list)
    correlations: list[ScheduledCorrelation] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)
    filtered: int = 0

    def rule_ids(self) -> list[str]:
        return [q.meta.id for q in self.queries if q.emit] + [c.meta.id for c in self.correlations]


def lucene_dsl(lucene: str) -> dict[str, Any]:
    """The DSL clause for a converted Lucene query (what Kibana's Lucene bar runs)."""
    return {"query_string": {"query": lucene, "analyze_wildcard": True}}


def _has_keyword(cond: Any) -> bool:
    if isinstance(cond, ConditionValueExpression):
        return True
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return cond.field is None
    return any(_has_keyword(arg) for arg in getattr(cond, "args", ()) or ())


def _interval(rule: SigmaRule | SigmaCorrelationRule) -> float | None:
    raw = (rule.custom_attributes or {}).get(INTERVAL_ATTRIBUTE)
    if raw is None:
        return None
    from collector.config import parse_duration

    seconds = parse_duration(raw if isinstance(raw, int | float) else str(raw))
    if seconds <= 0:
        raise ValueError(f"{INTERVAL_ATTRIBUTE} must be positive")
    return seconds


def make_backend(placeholders: Mapping[str, Sequence[str]] | None = None) -> SocLuceneBackend:
    """One backend serves every rule: each conversion applies a fresh copy of the pipeline."""
    return SocLuceneBackend(processing_pipeline=build_pipeline(placeholders) + mapping_pipeline())


def _convert_one(rule: SigmaRule, backend: SocLuceneBackend) -> str:
    backend.convert_rule(rule)  # returns [] for rules only correlations consume; the result is kept
    queries = rule.get_conversion_result()
    applied = backend.last_processing_pipeline.applied_ids if backend.last_processing_pipeline else set()
    if not is_logsource_mapped(set(applied)) and any(_has_keyword(c.parsed) for c in rule.detection.parsed_condition):
        ls = rule.logsource
        raise UnsupportedRule(
            "keyword search on unmapped log source "
            f"(product={ls.product}, category={ls.category}, service={ls.service})"
        )
    texts = [str(q) for q in queries if str(q).strip()]
    if not texts:
        raise UnsupportedRule("the backend produced no query")
    return texts[0] if len(texts) == 1 else " OR ".join(f"({t})" for t in texts)


def _passes(meta: RuleMeta, statuses: Sequence[str] | None, levels: Sequence[str] | None) -> bool:
    if statuses and meta.status not in {s.lower() for s in statuses}:
        return False
    return not (levels and meta.level not in {lv.lower() for lv in levels})


def compile_rules(
    rule_paths: Sequence[Path],
    *,
    statuses: Sequence[str] | None = None,
    levels: Sequence[str] | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> CompiledRules:
    """Parse rule files/directories and convert every rule; unconvertible ones are listed."""
    out = CompiledRules()
    files = rule_files([Path(p) for p in rule_paths])
    collection = SigmaCollection.load_ruleset(list(files), collect_errors=True)
    backend = make_backend(placeholders)
    by_id: dict[str, ScheduledQuery] = {}
    correlations: list[SigmaCorrelationRule] = []
    for rule in collection.rules:
        path = str(rule.source.path) if rule.source and rule.source.path else ""
        title = rule.title or "(untitled)"
        if rule.errors:
            reason = "; ".join(f"{type(e).__name__}: {e}" for e in rule.errors[:3])
            out.skipped.append(SkippedRule(path, str(rule.id or ""), title, reason))
            continue
        meta = _meta(rule, path)
        if not _passes(meta, statuses, levels):
            out.filtered += 1
            continue
        if isinstance(rule, SigmaCorrelationRule):
            correlations.append(rule)
            continue
        try:
            query = ScheduledQuery(meta, _convert_one(rule, backend), True, _interval(rule))
        except Exception as exc:  # the backend's errors, our UnsupportedRule, a bad interval
            reason = str(exc) if isinstance(exc, UnsupportedRule) else f"{type(exc).__name__}: {exc}"
            out.skipped.append(SkippedRule(path, meta.id, title, reason))
            continue
        by_id[meta.id] = query
        out.queries.append(query)
    consumed: dict[str, bool] = {}
    for corr in correlations:
        path = str(corr.source.path) if corr.source and corr.source.path else ""
        meta = _meta(corr, path)
        try:
            spec = _correlation_spec(corr, path)
            for rid in spec.rule_ids:  # as the streaming loader: consumed even when this one is skipped
                consumed[rid] = consumed.get(rid, False) or bool(corr.generate)
            if spec.kind not in ("event_count", "value_count"):
                raise UnsupportedRule(f"correlation type {spec.kind} is not supported on the scheduled path yet")
            missing = [rid for rid in spec.rule_ids if rid not in by_id]
            if missing:
                raise UnsupportedRule(f"referenced rules not converted: {missing}")
            bases = tuple(by_id[rid] for rid in spec.rule_ids)
            out.correlations.append(ScheduledCorrelation(spec, bases, _interval(corr)))
        except Exception as exc:
            reason = str(exc) if isinstance(exc, UnsupportedRule) else f"{type(exc).__name__}: {exc}"
            out.skipped.append(SkippedRule(path, meta.id, meta.title, reason))
            continue
    out.queries = [
        ScheduledQuery(q.meta, q.lucene, consumed.get(q.meta.id, True), q.interval_seconds) for q in out.queries
    ]
    return out
