"""The README's run command, end to end: agent -> collector -> store -> detection -> SOC API.

``soc demo --exit-after`` is exactly what ``make run`` runs, minus waiting for Ctrl-C: real
processes, real mutual TLS, the real embedded stores. It must show alerts raised from a replayed
capture and from a replayed log file, read back through the SOC API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_shows_alerts_from_pcap_and_log(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "soc_common", "demo", "--data-dir", str(data), "--repo", str(REPO),
         "--exit-after", "--timeout", "120"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # the alert table names where each alert came from
    assert "pcap" in proc.stdout and "log" in proc.stdout, output[-4000:]
    assert (data / "soc.db").exists() and (data / "events.db").exists()


def test_demo_refuses_a_folder_that_is_not_the_repository(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "soc_common", "demo", "--data-dir", str(tmp_path / "d"), "--repo", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "not the repository checkout" in proc.stderr
