"""Fixtures for the collector core tests (see ingest_harness for the agent side)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.ingest_harness import Stack, start_stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path)
    yield s
    s.server.stop()
    s.store.close()
