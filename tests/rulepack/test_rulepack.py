"""The rule pack: every rule fires on its sample and stays silent on its near-miss, through the engine.

Each rule file is loaded on its own (plus the rules a correlation references) with ``load_engine``;
sample events come from the real parsers and normalisers and pass through the collector's
processor chain (zones, threat intel) before detection, exactly as in production.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import CollectorConfig, EnrichSettings, ZoneSettings
from collector.detection.loader import load_engine, rule_files
from collector.pipeline.base import Processor
from collector.pipeline.runner import build_processors
from rulepack.samples_build import EvtxMissing, build_case, iter_cases
from soc_common.ecs import Event

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
SAMPLES = Path(__file__).resolve().parent / "samples"

# The zone plan the samples assume (documented in rules/README.md); longest prefix wins.
ZONES = {
    "internet": ["0.0.0.0/0"],
    "party-wan": ["10.10.0.0/16"],
    "datacenter": ["10.0.0.0/24"],
    "admin": ["10.0.1.0/24"],
    "restricted": ["10.20.0.0/24"],
    "office": ["192.168.0.0/16"],
    "loopback": ["127.0.0.0/8"],
}
INTEL = "type,value,description\nip,198.51.100.66,C2 server\ndomain,update-check.example,phishing kit host\n"

TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
    "collection", "command-and-control", "exfiltration", "impact",
}  # fmt: skip
TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]


ALL_FILES = rule_files([RULES])
RULE_DOCS: dict[Path, dict[str, Any]] = {p: _docs(p)[0] for p in ALL_FILES}
BY_REF: dict[str, Path] = {}
for _path, _doc in RULE_DOCS.items():
    BY_REF[str(_doc["id"])] = _path
    if _doc.get("name"):
        BY_REF[str(_doc["name"])] = _path


def _sample_path(rule: Path) -> Path:
    return SAMPLES / f"{rule.stem}.yml"


def _with_references(rule: Path) -> list[Path]:
    """The rule file plus (recursively) the files of the rules its correlation references."""
    out = [rule]
    for ref in (RULE_DOCS[rule].get("correlation") or {}).get("rules") or []:
        target = BY_REF.get(str(ref))
        if target is None:
            raise AssertionError(f"{rule}: referenced rule {ref} is not in the pack")
        out += [p for p in _with_references(target) if p not in out]
    return out


@pytest.fixture(scope="session")
def processors(tmp_path_factory: pytest.TempPathFactory) -> list[Processor]:
    base = tmp_path_factory.mktemp("rulepack")
    intel = base / "intel.csv"
    intel.write_text(INTEL, encoding="utf-8")
    enrich = EnrichSettings(
        zones=[ZoneSettings(name=name, cidrs=cidrs) for name, cidrs in ZONES.items()],
        intel_files=[intel],
    )
    return build_processors(CollectorConfig(data_dir=base, enrich=enrich))


@pytest.fixture(scope="session")
def rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rule-cache")


def _through_collector(events: list[Event], processors: list[Processor]) -> list[Event]:
    for processor in processors:
        events = processor.process(events)
    return events


def _cases() -> Iterator[Any]:
    for rule in ALL_FILES:
        sample = _sample_path(rule)
        if not sample.exists():
            continue
        doc = _docs(sample)[0]
        gap = doc.get("xfail")
        for expect in ("match", "near_miss"):
            for name, case in iter_cases(doc, expect):
                marks = []
                case_gap = case.get("xfail") or (gap if expect == "match" else None)
                if case_gap:
                    marks.append(pytest.mark.xfail(reason=str(case_gap), strict=True))
                rel = rule.relative_to(RULES).with_suffix("")
                yield pytest.param(rule, expect, case, id=f"{rel}:{expect}:{name}", marks=marks)


@pytest.mark.parametrize(("rule", "expect", "case"), list(_cases()))
def test_rule_on_sample(
    rule: Path, expect: str, case: dict[str, Any], processors: list[Processor], rule_cache: Path
) -> None:
    rule_id = str(RULE_DOCS[rule]["id"])
    try:
        events = build_case(case, f"{rule.stem}:{expect}")
    except EvtxMissing as exc:
        pytest.skip(str(exc))
    events = _through_collector(events, processors)
    engine = load_engine(_with_references(rule), cache_dir=rule_cache)
    report = engine.report
    assert report is not None
    assert not report.skipped, report.skipped
    fired = [a for a in engine.process(events) if a.rule_id == rule_id]
    if expect == "match":
        assert fired, f"{rule.name} did not fire on {case.get('name')}"
        assert fired[0].rule_title == RULE_DOCS[rule]["title"]
    else:
        assert not fired, f"{rule.name} fired on near-miss {case.get('name')}: {fired[0].events[:2]}"


@pytest.mark.parametrize("rule", ALL_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_every_rule_has_samples(rule: Path) -> None:
    sample = _sample_path(rule)
    assert sample.exists(), f"{rule} has no sample file {sample}"
    doc = _docs(sample)[0]
    assert list(iter_cases(doc, "match")), f"{sample}: no match case"
    assert list(iter_cases(doc, "near_miss")), f"{sample}: no near_miss case"


def test_sample_files_belong_to_rules() -> None:
    stems = [p.stem for p in ALL_FILES]
    assert len(stems) == len(set(stems)), "rule file names must be unique across folders (samples key on them)"
    orphans = sorted(p.name for p in SAMPLES.glob("*.yml") if p.stem not in stems)
    assert not orphans, f"samples without a rule: {orphans}"


@pytest.mark.parametrize("rule", ALL_FILES, ids=lambda p: str(p.relative_to(RULES)))
def test_rule_metadata(rule: Path) -> None:
    doc = RULE_DOCS[rule]
    uuid.UUID(str(doc["id"]))
    assert doc.get("status") in ("test", "stable")
    assert doc.get("author") == "SOC platform"
    assert isinstance(doc.get("date"), date | str)
    assert doc.get("level") in ("informational", "low", "medium", "high", "critical")
    assert doc.get("description") and doc.get("falsepositives")
    tags = [str(t) for t in doc.get("tags") or []]
    if doc["level"] != "informational":
        assert any(TECHNIQUE.match(t.split(".", 1)[1]) for t in tags if t.startswith("attack.")), tags
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace == "attack":
            assert name in TACTICS or TECHNIQUE.match(name), f"unknown ATT&CK tag {tag}"


def test_ids_are_unique() -> None:
    ids = [str(d["id"]) for d in RULE_DOCS.values()]
    assert len(ids) == len(set(ids))


def test_readme_indexes_every_rule() -> None:
    readme = (RULES / "README.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(RULES)) for p in ALL_FILES if str(p.relative_to(RULES)) not in readme]
    assert not missing, f"rules/README.md does not list {missing}"


def test_whole_pack_loads_without_skips(rule_cache: Path) -> None:
    engine = load_engine([RULES], cache_dir=rule_cache)
    report = engine.report
    assert report is not None
    assert not report.skipped, [(s.title, s.reason) for s in report.skipped]
    assert report.loaded == len(ALL_FILES)
    assert len(ALL_FILES) >= 40


def test_sigma_check_passes() -> None:
    """sigma-cli's validators, minus the two that download MITRE data (no Internet at run time)."""
    sigma = Path(sys.executable).parent / "sigma"
    if not sigma.exists():
        pytest.skip("sigma-cli is not installed in this environment")
    result = subprocess.run(
        [str(sigma), "check", "--fail-on-error", "--fail-on-issues", "-x", "attacktag", "-x", "d3_fendtag",
         str(RULES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Found 0 errors, 0 condition errors and 0 issues" in result.stdout
