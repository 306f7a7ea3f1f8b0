"""Shared fixtures: the real EVTX attack samples (read-only, never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "evtx-attack-samples"


def sample_files() -> list[Path]:
    return sorted(SAMPLES.rglob("*.evtx")) if SAMPLES.is_dir() else []


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"EVTX samples not present at {SAMPLES} (shared reference data)")
    return SAMPLES


@pytest.fixture(scope="session")
def evtx_files(samples: Path) -> list[Path]:
    return sample_files()
