"""soc package: the bundle installs into a fresh venv with no network at all, and the agent stays small.

Building needs the package index (pip download), which is reachable where the suite runs; the
install half runs inside a network namespace with no interfaces (``unshare -n``), so a bundle
that still needed the Internet would fail here, not at a customer's site.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc_common.ops.package import PackageError, build_bundle

SERVER_ONLY = ("elasticsearch", "pysigma", "fastapi", "sqlalchemy")


def _no_network_prefix() -> tuple[list[str], dict[str, str], str]:
    """A command prefix that removes the network, or an unroutable proxy when that is not allowed."""
    env = dict(os.environ)
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", "--"], env, "network namespace without interfaces"
    # Fallback: every HTTP(S) request goes to a closed port on loopback (and pip runs --no-index).
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    return [], env, "unroutable proxy + --no-index (unshare -n not permitted)"


@pytest.fixture(scope="session")
def agent_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Linux agent bundle per test session (pip's own cache keeps rebuilds cheap)."""
    out = tmp_path_factory.mktemp("bundle") / "soc-bundle"
    try:
        build_bundle(out, platform="linux", python=f"{sys.version_info[0]}.{sys.version_info[1]}", agent_only=True)
    except PackageError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"building the bundle failed: {exc}")
        pytest.skip(f"building the bundle needs the package index: {exc}")
    yield out


@pytest.mark.slow
def test_bundle_layout_and_lock(agent_bundle: Path) -> None:
    wheels = sorted(p.name for p in (agent_bundle / "wheelhouse" / "linux").glob("*.whl"))
    assert any(w.startswith("soc_platform-") for w in wheels)
    lock = (agent_bundle / "requirements-linux.txt").read_text(encoding="utf-8")
    pinned = [line.split("==")[0] for line in lock.splitlines() if "==" in line]
    assert len(pinned) == len(wheels) and lock.count("--hash=sha256:") == len(wheels)
    for required in ("pydantic", "typer", "cryptography", "psutil", "evtx", "scapy", "orjson", "numpy"):
        assert required in pinned
    for server in SERVER_ONLY:
        assert server not in pinned
    assert (agent_bundle / "rules").is_dir() and (agent_bundle / "deploy" / "api" / "soc-api.service").exists()
    sums = (agent_bundle / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = {line.split("  ", 1)[1] for line in sums}
    on_disk = {p.relative_to(agent_bundle).as_posix() for p in agent_bundle.rglob("*") if p.is_file()}
    assert listed == on_disk - {"SHA256SUMS"}
    check = subprocess.run(["sha256sum", "--quiet", "--strict", "-c", "SHA256SUMS"], cwd=agent_bundle)
    assert check.returncode == 0


@pytest.mark.slow
def test_offline_install_into_a_fresh_venv(agent_bundle: Path, tmp_path: Path) -> None:
    prefix, env, how = _no_network_prefix()
    print(f"offline install isolation: {how}")
    venv = tmp_path / "venv"
    result = subprocess.run(
        [*prefix, "sh", str(agent_bundle / "install.sh"), "--prefix", str(venv), "--python", sys.executable],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    soc = venv / "bin" / "soc"
    version = subprocess.run([*prefix, str(soc), "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("soc "), version.stderr
    agent_help = subprocess.run([*prefix, str(soc), "agent", "--help"], capture_output=True, text=True, env=env)
    assert agent_help.returncode == 0 and "enroll" in agent_help.stdout, agent_help.stderr
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    installed = {line.split("==")[0].lower() for line in listing.stdout.splitlines()}
    assert "soc-platform" in installed
    assert not installed & set(SERVER_ONLY), installed & set(SERVER_ONLY)


def test_altered_bundle_is_refused_by_the_installer(agent_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(agent_bundle, copy)
    rules = sorted((copy / "rules").rglob("*.yml"))
    rules[0].write_text(rules[0].read_text(encoding="utf-8") + "\n# tampered\n", encoding="utf-8")
    result = subprocess.run(
        ["sh", str(copy / "install.sh"), "--prefix", str(tmp_path / "venv")], capture_output=True, text=True
    )
    assert result.returncode == 1 and "damaged or altered" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_refuses_a_non_empty_output_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("busy", encoding="utf-8")
    with pytest.raises(PackageError, match="not empty"):
        build_bundle(tmp_path, platform="linux")
