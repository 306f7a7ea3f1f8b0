"""Load Sigma rules (files or SigmaHQ-style directories) into a :class:`DetectionEngine`.

pySigma does the parsing and the :mod:`pipeline` mapping; every rule it or we cannot evaluate is
listed in the :class:`LoadReport` with the reason and skipped, never fatal. Parsing thousands of
rules takes seconds, so the result (IR, not pySigma objects) is cached on disk, keyed by every
rule file's path, size and mtime plus the pipeline version, filters and placeholders.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import logging
import marshal
import os
import pickle
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.detection.compiled import CompiledRules
from collector.detection.engine import DetectionEngine
from collector.detection.ir import UnsupportedRule, condition_node, has_keyword, simplify
from collector.detection.pipeline import PIPELINE_VERSION, build_pipeline, is_logsource_mapped
from collector.detection.specs import CorrelationSpec, RuleMeta, RuleSpec, SkippedRule
from soc_common.ecs import stable_event_id

if TYPE_CHECKING:  # pySigma and YAML load only when the cache misses
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule import SigmaRule

log = logging.getLogger(__name__)

RULE_SUFFIXES = (".yml", ".yaml")
# Bump when the cached form changes; the Python cache tag covers marshal'd code objects.
_CACHE_FORMAT = 4
_CACHE_MAGIC = b"soc-sigma-cache\n"
_DIGEST_SIZE = 32


@dataclass
class LoadReport:
    """What was loaded and what was skipped (with reasons)."""

    files: int = 0
    rules: list[RuleSpec] = field(default_factory=list)
    correlations: list[CorrelationSpec] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)
    filtered: int = 0  # rules left out by the status/level filters (not errors)
    from_cache: bool = False
    compiled: CompiledRules | None = field(default=None, repr=False)  # what the engine runs

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.correlations)


#: A rule file found: (path as given, for messages; absolute path; size; mtime in ns).
FoundFile = tuple[str, str, int, int]


def rule_files(paths: Sequence[Path]) -> list[Path]:
    """Rule files under the given files/directories, recursively, in a stable order."""
    return [Path(found[0]) for found in find_rule_files(paths)]


def find_rule_files(paths: Sequence[Path]) -> list[FoundFile]:
    """Like :func:`rule_files`, with what the cache key needs: one ``stat`` per file, taken from
    the directory scan (walking, then ``isfile`` and ``stat`` again, was a third of a warm start)."""
    out: list[FoundFile] = []
    for path in paths:
        name = str(path)
        if path.is_dir():
            found: list[tuple[tuple[str, ...], FoundFile]] = []
            _scan(name, os.path.abspath(name), (), found)
            out.extend(f for _, f in sorted(found))
        elif path.exists():
            st = os.stat(name)
            out.append((name, os.path.abspath(name), st.st_size, st.st_mtime_ns))
    return out


def _scan(shown: str, absolute: str, parts: tuple[str, ...], found: list[tuple[tuple[str, ...], FoundFile]]) -> None:
    """Rule files under one directory; symlinked files count, symlinked directories are not walked
    (``os.walk`` semantics), an unreadable directory or a broken link is passed over."""
    try:
        with os.scandir(absolute) as it:
            entries = list(it)
    except OSError:
        return
    shown_dir, absolute_dir = os.path.join(shown, ""), os.path.join(absolute, "")  # with the separator
    for entry in entries:
        name = entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not entry.is_symlink():
                _scan(shown_dir + name, absolute_dir + name, (*parts, name), found)
            continue
        if not name.endswith(RULE_SUFFIXES):
            continue
        try:
            st = entry.stat()  # follows a symlink; cached by the scan where it can be
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append(((*parts, name), (shown_dir + name, absolute_dir + name, st.st_size, st.st_mtime_ns)))


def _meta(rule: SigmaRule | SigmaCorrelationRule, path: str) -> RuleMeta:
    from sigma.rule import SigmaRule

    rule_id = str(rule.id) if rule.id else stable_event_id("rule", path, rule.title)
    return RuleMeta(
        id=rule_id,
        title=rule.title or rule_id,
        level=str(rule.level.name).lower() if rule.level else "medium",
        status=str(rule.status.name).lower() if rule.status else "",
        tags=tuple(f"{t.namespace}.{t.name}" for t in rule.tags),
        source=path,
        name=rule.name or "",
        product=(rule.logsource.product or "") if isinstance(rule, SigmaRule) else "",
    )


def _passes(meta: RuleMeta, status_filter: Sequence[str] | None, level_filter: Sequence[str] | None) -> bool:
    if status_filter and meta.status not in {s.lower() for s in status_filter}:
        return False
    return not (level_filter and meta.level not in {lv.lower() for lv in level_filter})


def _compile_rule(rule: SigmaRule, pipeline: Any, path: str) -> RuleSpec:
    pipeline.apply(rule)
    mapped = is_logsource_mapped(pipeline.applied_ids)
    trees = [simplify(condition_node(c.parsed)) for c in rule.detection.parsed_condition]
    node = trees[0] if len(trees) == 1 else ("or", tuple(trees))
    if not mapped and has_keyword(node):
        ls = rule.logsource
        raise UnsupportedRule(
            "keyword search on unmapped log source "
            f"(product={ls.product}, category={ls.category}, service={ls.service})"
        )
    return RuleSpec(meta=_meta(rule, path), condition=node)


def _correlation_spec(rule: SigmaCorrelationRule, path: str) -> CorrelationSpec:
    from sigma.correlations import SigmaCorrelationRule

    refs: list[str] = []
    for ref in rule.rules or []:
        target = getattr(ref, "rule", None)
        if target is None:
            raise UnsupportedRule(f"referenced rule {ref.reference!r} not found")
        if isinstance(target, SigmaCorrelationRule):
            raise UnsupportedRule("correlation over another correlation is not supported in-process")
        refs.append(str(target.id) if target.id else "")
    cond = rule.condition
    op = getattr(getattr(cond, "op", None), "name", "GTE").lower()
    count = getattr(cond, "count", None)
    fieldref = getattr(cond, "fieldref", None)
    if isinstance(fieldref, list):
        if len(fieldref) != 1:
            raise UnsupportedRule("value_count over several fields is not supported")
        fieldref = fieldref[0]
    kind = rule.type.name.lower()
    if kind not in ("event_count", "value_count", "temporal", "temporal_ordered"):
        raise UnsupportedRule(f"correlation type {kind} is not supported")
    if kind == "value_count" and not fieldref:
        raise UnsupportedRule("value_count without a field")
    if count is None:
        raise UnsupportedRule("extended correlation conditions are not supported")
    aliases: dict[str, dict[str, str]] = {}
    for alias in rule.aliases:
        aliases[alias.alias] = {
            str(ref.rule.id): fieldname for ref, fieldname in alias.mapping.items() if getattr(ref, "rule", None)
        }
    return CorrelationSpec(
        meta=_meta(rule, path),
        kind=kind,
        rule_ids=tuple(refs),
        timespan_seconds=float(rule.timespan.seconds),
        group_by=tuple(rule.group_by or ()),
        op=op,
        threshold=int(count),
        value_field=fieldref,
        aliases=aliases,
    )


def _origin_key(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.id) if rule.id else f"title:{rule.title}"


def _parse_files(files: Sequence[Path], report: LoadReport) -> tuple[SigmaCollection, dict[str, str]]:
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule.base import SigmaYAMLLoader

    collections: list[SigmaCollection] = []
    origin: dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            # pySigma's own loader class (duplicate-key check) on the C parser: ~10x from_yaml's speed.
            docs = list(yaml.load_all(text, Loader=SigmaYAMLLoader))
            coll = SigmaCollection.from_dicts(docs, collect_errors=True, collect_filters=True, resolve_references=False)
        except Exception as exc:  # a broken file costs only itself
            report.skipped.append(SkippedRule(str(path), "", path.name, f"unreadable: {exc}"))
            continue
        for rule in coll.rules:
            origin.setdefault(_origin_key(rule), str(path))
        collections.append(coll)
    try:  # merging also applies Sigma filters (meta-filters) to the rules they name
        merged = SigmaCollection.merge(collections, resolve_references=False)
    except Exception as exc:
        report.skipped.append(SkippedRule("", "", "filters", f"Sigma filters not applied: {exc}"))
        plain = [SigmaCollection(list[Any](c.rules), resolve_references=False) for c in collections]
        merged = SigmaCollection.merge(plain, resolve_references=False)
    for rule in merged.rules:
        if isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(merged)
            except Exception as exc:
                rule.errors.append(exc)  # type: ignore[arg-type]
    return merged, origin


def _build(
    files: Sequence[Path],
    status_filter: Sequence[str] | None,
    level_filter: Sequence[str] | None,
    placeholders: Mapping[str, Sequence[str]] | None,
) -> LoadReport:
    from sigma.correlations import SigmaCorrelationRule

    report = LoadReport(files=len(files))
    merged, origin = _parse_files(files, report)
    pipeline = build_pipeline(placeholders)
    referenced: dict[str, bool] = {}  # base rule id -> whether a referencing correlation wants it emitted
    for rule in merged.rules:
        path = origin.get(_origin_key(rule), "")
        meta_title = rule.title or "(untitled)"
        if rule.errors:
            reason = "; ".join(f"{type(e).__name__}: {e}" for e in rule.errors[:3])
            report.skipped.append(SkippedRule(path, str(rule.id or ""), meta_title, reason))
            continue
        meta = _meta(rule, path)
        if not _passes(meta, status_filter, level_filter):
            report.filtered += 1
            continue
        try:
            if isinstance(rule, SigmaCorrelationRule):
                spec = _correlation_spec(rule, path)
                report.correlations.append(spec)
                for rid in spec.rule_ids:
                    referenced[rid] = referenced.get(rid, False) or bool(rule.generate)
            else:
                report.rules.append(_compile_rule(rule, pipeline, path))
        except UnsupportedRule as exc:
            report.skipped.append(SkippedRule(path, meta.id, meta_title, str(exc)))
        except Exception as exc:  # pySigma processing errors, bad regexes...
            report.skipped.append(SkippedRule(path, meta.id, meta_title, f"{type(exc).__name__}: {exc}"))
    loaded_ids = {r.meta.id for r in report.rules}
    kept: list[CorrelationSpec] = []
    for corr in report.correlations:
        missing = [rid for rid in corr.rule_ids if rid not in loaded_ids]
        if missing:
            report.skipped.append(
                SkippedRule(corr.meta.source, corr.meta.id, corr.meta.title, f"referenced rules not loaded: {missing}")
            )
        else:
            kept.append(corr)
    report.correlations = kept
    report.rules = [
        RuleSpec(meta=r.meta, condition=r.condition, emit=referenced.get(r.meta.id, True)) for r in report.rules
    ]
    return report


def _cache_key(
    files: Sequence[FoundFile],
    status_filter: Sequence[str] | None,
    level_filter: Sequence[str] | None,
    placeholders: Mapping[str, Sequence[str]] | None,
) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{_CACHE_FORMAT}|{sys.implementation.cache_tag}|{PIPELINE_VERSION}|{_sigma_version()}".encode())
    h.update(_code_fingerprint().encode())
    h.update(f"|{status_filter}|{level_filter}".encode())
    h.update(repr(sorted((k, list(v)) for k, v in (placeholders or {}).items())).encode())
    h.update("".join(f"{absolute}|{size}|{mtime}\n" for _, absolute, size, mtime in files).encode())
    return h.hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "soc" / "detection"


def load_rules(
    rule_paths: Sequence[Path],
    *,
    status_filter: Sequence[str] | None = None,
    level_filter: Sequence[str] | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    cache_dir: Path | None = None,
) -> LoadReport:
    """Parse, map and translate rules; reuse the on-disk cache when no rule file changed."""
    found = find_rule_files([Path(p) for p in rule_paths])
    cache_file: Path | None = None
    if cache_dir is not None:
        cache_file = cache_dir / f"{_cache_key(found, status_filter, level_filter, placeholders)}.marshal"
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    report = _build([Path(f[0]) for f in found], status_filter, level_filter, placeholders)
    report.compiled = CompiledRules.build([r.condition for r in report.rules], report.correlations)
    if cache_file is not None:
        _write_cache(cache_file, report)
    return report


#: Modules whose code shapes the cached form: editing one invalidates every cache.
_CACHE_SHAPING = (
    "ir.py",
    "pipeline.py",
    "loader.py",
    "codegen.py",
    "compiled.py",
    "index.py",
    "specs.py",
    "regex_literals.py",
)


def _code_fingerprint() -> str:
    h = hashlib.blake2b(digest_size=12)
    here = Path(__file__).parent
    for name in _CACHE_SHAPING:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _sigma_version() -> str:
    """pySigma's installed version, from its ``.dist-info`` folder name: the same answer as
    ``importlib.metadata.version("pysigma")`` without importing that (~25 ms of every start)."""
    found: set[str] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            low = name.lower()
            if low.startswith("pysigma-") and low.endswith(".dist-info"):
                found.add(name[len("pysigma-") : -len(".dist-info")])
    return ",".join(sorted(found)) or "?"


def _read_cache(path: Path) -> LoadReport | None:
    """A cached report, or None when absent, not ours or damaged (then it is rebuilt, never fatal).

    The cache holds code that will run, so it is trusted only when this user owns it and its folder
    and nobody else may write them, and its digest matches (a torn or altered write is refused
    before ``marshal`` sees it).
    """
    try:
        data = _read_private(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("detection rule cache %s unreadable (%s); rebuilding", path, exc)
        return None
    if data is None:
        log.warning("detection rule cache %s is not private to this user; not used", path)
        return None
    if len(data) < len(_CACHE_MAGIC) + _DIGEST_SIZE or not data.startswith(_CACHE_MAGIC):
        return None
    digest, payload = (
        data[len(_CACHE_MAGIC) : len(_CACHE_MAGIC) + _DIGEST_SIZE],
        data[len(_CACHE_MAGIC) + _DIGEST_SIZE :],
    )
    if not hmac.compare_digest(digest, _digest(payload)):
        log.warning("detection rule cache %s is damaged; rebuilding", path)
        return None
    data = payload
    paused = gc.isenabled()
    gc.disable()  # ~140,000 new objects, none of them garbage: collections here are pure cost
    try:
        return _report_from(data, path)
    finally:
        if paused:
            gc.enable()


def _report_from(data: bytes, path: Path) -> LoadReport | None:
    try:
        fmt, files, filtered, rules, correlations, skipped, compiled = marshal.loads(data)
        if fmt != _CACHE_FORMAT:
            return None
        report = LoadReport(
            files=files,
            rules=[RuleSpec(meta=RuleMeta(*meta), condition=cond, emit=emit) for meta, cond, emit in rules],
            correlations=pickle.loads(correlations),
            skipped=[SkippedRule(*s) for s in skipped],
            filtered=filtered,
            from_cache=True,
        )
        report.compiled = CompiledRules.from_state(compiled)
    except Exception as exc:
        log.warning("detection rule cache %s unreadable (%s); rebuilding", path, exc)
        return None
    return report


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()  # SHA-NI: twice blake2b's speed on 12 MB


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read_private(path: Path) -> bytes | None:
    """The file's bytes, or None when it or its folder is not this user's alone to write."""
    if not _private(os.stat(path.parent)):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        if not _private(os.fstat(fh.fileno())):
            return None
        return fh.read()


def _write_cache(path: Path, report: LoadReport) -> None:
    """Plain tuples through marshal: several times faster to load than pickled dataclasses."""
    assert report.compiled is not None
    rules = [
        (
            (m.id, m.title, m.level, m.status, m.tags, m.source, m.name, m.product),
            r.condition,
            r.emit,
        )
        for r in report.rules
        for m in (r.meta,)
    ]
    skipped = [(s.path, s.rule_id, s.title, s.reason) for s in report.skipped]
    try:
        data = marshal.dumps(
            (
                _CACHE_FORMAT,
                report.files,
                report.filtered,
                rules,
                pickle.dumps(report.correlations, protocol=pickle.HIGHEST_PROTOCOL),
                skipped,
                report.compiled.state(),
            )
        )
    except ValueError as exc:  # a value marshal cannot hold: run uncached rather than fail
        log.warning("detection rules not cacheable (%s)", exc)
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_CACHE_MAGIC + _digest(data) + data)
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot write detection rule cache %s: %s", path, exc)


def load_engine(
    rule_paths: list[Path],
    *,
    status_filter: Sequence[str] | None = None,
    level_filter: Sequence[str] | None = None,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    cache_dir: Path | None = None,
    max_groups: int = 10_000,
) -> DetectionEngine:
    """Load rules and build the streaming engine; ``engine.report`` tells what was skipped and why."""
    report = load_rules(
        rule_paths,
        status_filter=status_filter,
        level_filter=level_filter,
        placeholders=placeholders,
        cache_dir=cache_dir,
    )
    for skipped in report.skipped:
        log.info("rule skipped: %s (%s): %s", skipped.title, skipped.path, skipped.reason)
    return DetectionEngine(
        report.rules, report.correlations, report=report, max_groups=max_groups, compiled=report.compiled
    )
