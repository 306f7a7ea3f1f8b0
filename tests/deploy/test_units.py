"""The systemd units under deploy/: valid for systemd itself, hardened, and MemoryDenyWriteExecute-safe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.rglob("*.service"))
# Every unit, whatever it does, must have these.
BASELINE = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
}


def _directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    reason = "systemd-analyze missing (Debian package systemd; scripts/install-system-deps.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_units_found() -> None:
    names = {u.name for u in UNITS}
    assert {"soc-agent.service", "soc-collector.service", "soc-api.service"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    """Only the ExecStart binary is swapped for one that exists here; every other line is verified as is."""
    analyze = _systemd_analyze()
    text = unit.read_text(encoding="utf-8")
    exec_lines = re.findall(r"^ExecStart=(\S+)", text, flags=re.M)
    assert len(exec_lines) == 1
    copy = tmp_path / unit.name
    copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/usr/bin/true", text, flags=re.M), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    problems = [
        line
        for line in result.stderr.splitlines()
        if unit.name in line or "Unknown" in line or "Invalid" in line or "ignoring" in line.lower()
    ]
    assert result.returncode == 0 and not problems, result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_is_hardened(unit: Path) -> None:
    d = _directives(unit)
    for key, value in BASELINE.items():
        assert value in d.get(key, []), f"{unit.name}: {key}={value} missing"
    user = d.get("User", [""])[0]
    assert user and user != "root", f"{unit.name}: runs as its own user"
    writable = d.get("ReadWritePaths", [""])[0].split()
    assert writable and all(p.startswith("/var/lib/soc") for p in writable)
    assert "RestrictAddressFamilies" in d


@pytest.mark.parametrize("name", ["soc-collector.service", "soc-api.service"])
def test_servers_hold_no_capability(name: str) -> None:
    unit = next(u for u in UNITS if u.name == name)
    d = _directives(unit)
    assert d["CapabilityBoundingSet"] == [""] and d.get("AmbientCapabilities", [""]) == [""]


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, sys, tempfile
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("unsupported"); sys.exit(0)
    # From here on, like MemoryDenyWriteExecute=yes: no writable+executable mapping may be created.
    from pathlib import Path
    from soc_api.config import ApiConfig
    from soc_api.app import create_app
    from soc_api.services.auth import hash_password, verify_password
    from cryptography.hazmat.primitives.asymmetric import ec
    import collector.runtime, collector.detection.loader, agent.runtime, psycopg, scapy.all
    d = tempfile.mkdtemp()
    app = create_app(ApiConfig.model_validate(
        {"data_dir": d, "database": {"url": f"sqlite:///{d}/soc.db"}, "security": {"session_secret": "k" * 48}}))
    assert verify_password(hash_password("mật-khẩu-đủ-dài"), "mật-khẩu-đủ-dài")
    ec.generate_private_key(ec.SECP256R1())
    print("ok")
    """
)


def test_services_run_without_writable_executable_memory() -> None:
    """MemoryDenyWriteExecute=yes is safe: the kernel's PR_SET_MDWE enforces the same rule in a child."""
    result = subprocess.run([sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=120)
    if result.stdout.strip() == "unsupported":
        pytest.skip("kernel without PR_SET_MDWE (Linux < 6.3): cannot emulate MemoryDenyWriteExecute")
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
