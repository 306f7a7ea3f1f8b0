"""The soak suite: the whole SOC as real processes, under load, through faults."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: runs the whole stack under load with faults (minutes, real processes)")
