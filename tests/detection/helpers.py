"""Build engines from inline rule YAML for tests."""

from __future__ import annotations

import itertools
import textwrap
import uuid
from pathlib import Path
from typing import Any

from collector.detection.engine import DetectionEngine
from collector.detection.loader import load_engine

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
RULES = REPO / "rules"
_counter = itertools.count()


def rule_yaml(detection: str, logsource: str = "product: test", extra: str = "") -> str:
    return (
        f"title: Test rule {next(_counter)}\nid: {uuid.uuid4()}\nstatus: test\nlevel: medium\n"
        f"logsource:\n{textwrap.indent(logsource, '    ')}\n"
        f"detection:\n{textwrap.indent(textwrap.dedent(detection), '    ')}\n{extra}"
    )


def engine_from(tmp_path: Path, *docs: str, **kwargs: Any) -> DetectionEngine:
    folder = tmp_path / f"rules{next(_counter)}"
    folder.mkdir()
    for i, doc in enumerate(docs):
        (folder / f"r{i}.yml").write_text(doc, encoding="utf-8")
    return load_engine([folder], **kwargs)


def matches(engine: DetectionEngine, event: dict[str, Any]) -> bool:
    return bool(engine.evaluate(event).matches)
