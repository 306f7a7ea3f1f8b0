"""Conversion of Sigma rules to Elasticsearch queries, and the documented limits of the Lucene path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from collector.detection.loader import load_rules
from collector.detection.scheduled.cli import app
from collector.detection.scheduled.convert import compile_rules
from collector.detection.scheduled.runner import ScheduledDetector
from collector.detection.scheduled.settings import ScheduledSettings
from collector.detection.scheduled.state import StateStore
from collector.store.elastic import ElasticEventStore

from .helpers import RULES, T0, Clock, ListSink, auth_event, write_rule

WIN_PROC = "product: windows\ncategory: process_creation"


def test_every_rule_of_our_pack_converts_except_listed_temporal_correlations() -> None:
    compiled = compile_rules([RULES])
    streaming = load_rules([RULES])
    assert {q.meta.id for q in compiled.queries} == {r.meta.id for r in streaming.rules}
    assert all(s.reason.startswith("correlation type temporal") for s in compiled.skipped), compiled.skipped
    converted = {c.meta.id for c in compiled.correlations} | {s.rule_id for s in compiled.skipped}
    assert converted == {c.meta.id for c in streaming.correlations}
    # generate: false base rules are queried for their correlations but raise no alert themselves
    assert {q.meta.id for q in compiled.queries if not q.emit} == {r.meta.id for r in streaming.rules if not r.emit}


def test_strings_go_to_caseless_subfields_lowercased_and_cased_is_skipped(tmp_path: Path) -> None:
    rid = write_rule(tmp_path, "sel:\n    Image|endswith: '\\WHOAMI.EXE'\ncondition: sel\n", logsource=WIN_PROC)
    cased = write_rule(tmp_path, "sel:\n    CommandLine|cased|contains: 'ABC'\ncondition: sel\n", logsource=WIN_PROC)
    compiled = compile_rules([tmp_path])
    [query] = [q for q in compiled.queries if q.meta.id == rid]
    assert "winlog.event_data.Image.caseless:*\\\\whoami.exe" in query.lucene
    assert "event.code:(1 OR 4688)" in query.lucene  # the shared log-source mapping
    [skipped] = [s for s in compiled.skipped if s.rule_id == cased]  # the Lucene backend has no |cased
    assert "Case-sensitive string matching is not supported" in skipped.reason


def test_regex_is_anchored_for_lucene_and_flags_are_skipped_with_a_reason(tmp_path: Path) -> None:
    plain = write_rule(tmp_path, "sel:\n    CommandLine|re: 'a[0-9]+b'\ncondition: sel\n", logsource=WIN_PROC)
    anchored = write_rule(tmp_path, "sel:\n    CommandLine|re: '^a.*b$'\ncondition: sel\n", logsource=WIN_PROC)
    flagged = write_rule(tmp_path, "sel:\n    CommandLine|re|i: 'abc'\ncondition: sel\n", logsource=WIN_PROC)
    compiled = compile_rules([tmp_path])
    lucene = {q.meta.id: q.lucene for q in compiled.queries}
    assert "winlog.event_data.CommandLine:/.*a[0-9]+b.*/" in lucene[plain]
    assert "winlog.event_data.CommandLine:/a.*b/" in lucene[anchored]
    [skipped] = [s for s in compiled.skipped if s.rule_id == flagged]
    assert "regex flags" in skipped.reason


def test_keyword_search_on_unmapped_log_source_is_skipped(tmp_path: Path) -> None:
    rid = write_rule(tmp_path, "keywords:\n    - evil\ncondition: keywords\n", logsource="product: nothing")
    [skipped] = [s for s in compile_rules([tmp_path]).skipped if s.rule_id == rid]
    assert "keyword search on unmapped log source" in skipped.reason


def test_limitation_fields_without_caseless_subfield_match_case_sensitively(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    """Documented: event.action has no .caseless sub-field; our parsers emit it lower-case."""
    write_rule(tmp_path / "rules", "sel:\n    event.action: USER_CREATED\ncondition: sel\n")
    at = T0 - timedelta(minutes=10)
    es_store.write([auth_event("user_created", ts=at, ingested=at), auth_event("USER_CREATED", ts=at, ingested=at)])
    es_store.refresh()
    detector = ScheduledDetector(
        es_store,
        compile_rules([tmp_path / "rules"]),
        StateStore(state_file),
        sink,
        ScheduledSettings(),
        clock=Clock(T0),
    )
    [report] = detector.run_once()
    assert report.hits == 1  # the streaming engine would match both


def test_cli_convert_prints_queries_and_skipped_rules(tmp_path: Path) -> None:
    write_rule(tmp_path, "sel:\n    CommandLine|re|i: 'abc'\ncondition: sel\n", logsource=WIN_PROC)
    result = CliRunner().invoke(app, ["convert", "--rules", str(RULES), "--rules", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "user.name.caseless:root" in result.stdout
    assert "# correlation SSH Brute Force From One Source" in result.stdout
    assert "regex flags" in result.stderr
