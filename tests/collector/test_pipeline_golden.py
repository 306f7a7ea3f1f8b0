"""Differential test: the agent-batch path stores exactly the documents it stored before the speed work.

``fixtures/pipeline_golden.jsonl.gz`` was produced by the chain as it was before the hot-path rewrite
(NDJSON parse -> agent stamping -> Normalize ... ThreatIntel), over realistic agent traffic: two
records of every EVTX attack sample (Security, Sysmon, PowerShell...), flow/DNS/TLS/HTTP events
metered from the real captures, SSH authentication events, and a set of odd shapes (flat dotted
keys, missing or invalid fields, lists where strings are expected, huge strings, bad JSON lines).
Each fixture line is one batch: its body, the agent's id and site, and what came out. The current
code must give the same documents, byte for byte in their JSON form (key order included, because
that is what the store keeps), and the same rejections. The one intended difference (a ``tags``
that is not a list is now stored as a list) is applied to the expected side explicitly.

Regenerate only on purpose, when the stored form is meant to change:
``.venv/bin/python tests/collector/test_pipeline_golden.py INPUT.ndjson`` (a file of agent lines).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import collector.pipeline.normalize as normalize_module
from collector.config import CollectorConfig
from collector.ingest.batch import parse_ndjson
from collector.pipeline.runner import build_processors
from soc_common.ecs import Event
from soc_common.parsers.json_codec import dumps_bytes

GOLDEN = Path(__file__).parent / "fixtures" / "pipeline_golden.jsonl.gz"
FROZEN_NOW = datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)
BATCH_LINES = 97
AGENTS = [("agent-hn-1", "hn"), ("agent-none", ""), ("agent-hp-2", "hp")]

INTEL = """# test feed
198.51.100.0/24
203.0.113.66
bad.example
phish.example.vn
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
hash,DA39A3EE5E6B4B0D3255BFEF95601890AFD80709,empty sha1
domain,wpad.localdomain,proxy autodiscovery
"""
SYSTEMS_CSV = "system_id,asset\nSYS-DB,db-01\nSYS-WEB,10.2.0.0/24\n# comment,x\nSYS-DC,*-dc01*\n"


def golden_config(root: Path) -> CollectorConfig:
    """A provincial office set-up touching every enrichment rule kind."""
    (root / "intel.txt").write_text(INTEL, encoding="utf-8")
    (root / "systems.csv").write_text(SYSTEMS_CSV, encoding="utf-8")
    return CollectorConfig.model_validate(
        {
            "data_dir": str(root / "data"),
            "enrich": {
                "default_site": "tw",
                "zones": [
                    {"name": "party-wan", "cidrs": ["10.0.0.0/8"]},
                    {"name": "server", "cidrs": ["10.2.0.0/24", "172.16.0.0/12"]},
                    {"name": "lan", "cidrs": ["192.168.0.0/16", "fe80::/10"]},
                    {"name": "internet", "cidrs": ["0.0.0.0/0", "::/0"]},
                ],
                "sites": [
                    {"code": "hn", "cidrs": ["10.1.0.0/16"], "hosts": ["hn-*"]},
                    {"code": "hp", "cidrs": ["10.2.0.0/16"], "hosts": ["hp-*", "*.hp.local"]},
                    {"code": "dn", "hosts": ["*.dn.local"]},
                ],
                "systems": [
                    {"id": "SYS-MAIL", "hosts": ["mail01", "web01.example.vn"], "cidrs": ["192.168.5.0/24"]},
                ],
                "systems_file": str(root / "systems.csv"),
                "intel_files": [str(root / "intel.txt")],
                "max_field_chars": 32768,
            },
        }
    )


class _FrozenDatetime(datetime):
    """``datetime`` whose ``now`` is fixed, so ``event.ingested`` and clock tags are reproducible."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return FROZEN_NOW if tz is not None else FROZEN_NOW.replace(tzinfo=None)


def batches(lines: list[str]) -> Iterator[tuple[str, str, str]]:
    """``(agent_id, site, body)`` for consecutive slices of the agent lines."""
    for n, first in enumerate(range(0, len(lines), BATCH_LINES)):
        agent_id, site = AGENTS[n % len(AGENTS)]
        yield agent_id, site, "\n".join(lines[first : first + BATCH_LINES]) + "\n"


def run_batch(config: CollectorConfig, body: str, agent_id: str, site: str, stamp: Any) -> dict[str, Any]:
    """One batch through parse, stamping and the whole processor chain; fresh processors each time."""
    parsed = parse_ndjson(body.encode("utf-8"))
    stamp(parsed.events, agent_id, site)
    events = parsed.events
    for processor in build_processors(config):
        events = processor.process(events)
    return {
        "indexes": parsed.indexes,
        "rejected": [list(r) for r in parsed.rejected],
        "documents": [dumps_bytes(e).decode("utf-8", "surrogateescape") for e in events],  # exact bytes
    }


def _load_golden() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _stamp_current(events: list[Event], agent_id: str, site: str) -> None:
    from collector.ingest.batch import stamp_agent

    stamp_agent(events, agent_id, site)


def test_fixture_is_varied() -> None:
    golden = _load_golden()
    documents = [json.loads(d) for b in golden for d in b["documents"]]
    datasets = {d.get("event", {}).get("dataset") for d in documents}
    tags = {t for d in documents for t in d.get("tags", [])}
    assert len(documents) > 800
    assert {"network_traffic.flow", "network_traffic.dns", "system.auth"} <= datasets
    assert any(str(ds).startswith("windows.") for ds in datasets)
    assert {"truncated", "clock_skew", "late_arrival", "intel_match", "timestamp_invalid"} <= tags
    assert sum(len(b["rejected"]) for b in golden) >= 5


def test_chain_output_identical_to_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(normalize_module, "datetime", _FrozenDatetime)
    config = golden_config(tmp_path)
    golden = _load_golden()
    for n, expected in enumerate(golden):
        got = run_batch(config, expected["body"], expected["agent_id"], expected["site"], _stamp_current)
        assert got["rejected"] == expected["rejected"], f"batch {n}"
        assert got["indexes"] == expected["indexes"], f"batch {n}"
        assert len(got["documents"]) == len(expected["documents"]), f"batch {n}"
        for i, (doc, want) in enumerate(zip(got["documents"], expected["documents"], strict=True)):
            assert doc == _with_listified_tags(want), f"batch {n} document {i}"


def _with_listified_tags(document: str) -> str:
    """The one intended change since the fixture: a ``tags`` that is not a list is stored as one.

    (A string there made the first tag a processor added raise, costing the rest of the batch.)
    """
    if '"tags":' not in document:
        return document
    doc = json.loads(document)
    tags = doc.get("tags", [])
    if isinstance(tags, list):
        return document
    if tags is None:
        del doc["tags"]
    else:
        doc["tags"] = [tags if isinstance(tags, str) else json.dumps(tags, separators=(",", ":"))]
    return dumps_bytes(doc).decode("utf-8", "surrogateescape")


def regenerate(input_path: Path) -> None:
    """Write the fixture from agent lines with the code as it is now (on purpose only)."""
    import tempfile

    lines = input_path.read_text(encoding="utf-8").split("\n")
    while lines and not lines[-1]:
        lines.pop()
    normalize_module.datetime = _FrozenDatetime  # type: ignore[misc]
    with tempfile.TemporaryDirectory() as tmp:
        config = golden_config(Path(tmp))
        with gzip.open(GOLDEN, "wt", encoding="utf-8", compresslevel=9) as out:
            for agent_id, site, body in batches(lines):
                result = run_batch(config, body, agent_id, site, _stamp_current)
                record = {"agent_id": agent_id, "site": site, "body": body, **result}
                out.write(json.dumps(record) + "\n")  # ASCII: escaped bytes round-trip


if __name__ == "__main__":
    regenerate(Path(sys.argv[1]))
