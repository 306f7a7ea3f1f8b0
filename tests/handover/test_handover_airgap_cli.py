"""``soc handover`` commands: keys, air-gapped export and verify of a tampered copy, outbox list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from soc_api.db.migrate import upgrade
from soc_api.db.models import AuditEntry
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.handover import outbox
from soc_api.handover.airgap import MANIFEST, PUBLIC_KEYS
from soc_api.handover.cli import app
from soc_api.handover.keys import KeyRing
from soc_api.handover.models import HandoverKey
from tests.handover.samples import all_records

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    db = f"sqlite:///{tmp_path / 'soc.db'}"
    config = tmp_path / "api.toml"
    config.write_text(
        f'[database]\nurl = "{db}"\n[security]\nsession_secret = "{"k" * 48}"\n'
        f'[handover]\nsite = "hn"\nkey_dir = "{tmp_path / "keys"}"\n',
        encoding="utf-8",
    )
    return config, tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_keys_export_and_verify_names_missing_and_altered(setup: tuple[Path, Path]) -> None:
    config, tmp = setup
    code, out = _run("keys", "generate", "-c", str(config))
    assert code == 0, out
    upgrade(f"sqlite:///{tmp / 'soc.db'}")
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp / 'soc.db'}"))
    ring = KeyRing(tmp / "keys")
    kinds = ["incident_report", "kpi_snapshot", "alert_summary", "drill_record"]
    with sessions() as s, s.begin():
        begin_write(s)
        for kind in kinds:
            outbox.enqueue(s, site="hn", package_type=kind, record=all_records()[kind], key=ring.current())
    code, out = _run("keys", "rotate", "-c", str(config))
    assert code == 0 and "new key" in out, out
    with sessions() as s, s.begin():  # one package signed with the new key
        begin_write(s)
        outbox.enqueue(
            s, site="hn", package_type="dossier_status", record=all_records()["dossier_status"], key=ring.current()
        )
    with sessions() as s:
        assert len(list(s.scalars(select(HandoverKey)))) == 2
        actions = set(s.scalars(select(AuditEntry.action)))
        assert {"handover.key_generated", "handover.key_rotated", "handover.package_built"} <= actions
    public = tmp / "registered.json"
    assert _run("keys", "export-public", "-c", str(config), "--out", str(public))[0] == 0

    export = tmp / "export"
    code, out = _run("export", "-c", str(config), "--out", str(export), "--since", "2000-01-01T00:00:00Z")
    assert code == 0 and "exported 5 packages (sequence 1-5)" in out, out
    code, out = _run("verify", str(export), "--keys", str(public))
    assert code == 0 and "OK: 5 packages verified" in out, out

    copy = tmp / "copy"
    shutil.copytree(export, copy)
    files = sorted(p for p in copy.iterdir() if p.name not in (MANIFEST, PUBLIC_KEYS))
    files[1].unlink()  # sequence 2 removed
    altered = files[2]  # sequence 3: one byte changed
    data = bytearray(altered.read_bytes())
    data[data.index(b'"total":') + 8] ^= 0x01
    altered.write_bytes(bytes(data))
    code, out = _run("verify", str(copy), "--keys", str(public))
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 2, out
    assert f"sequence 2: {files[1].name} missing" in out
    assert f"sequence 3: {altered.name} altered" in out


def test_verify_detects_manifest_tampering_gaps_and_extra_files(setup: tuple[Path, Path]) -> None:
    config, tmp = setup
    assert _run("keys", "generate", "-c", str(config), "--no-db")[0] == 0
    upgrade(f"sqlite:///{tmp / 'soc.db'}")
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp / 'soc.db'}"))
    with sessions() as s, s.begin():
        begin_write(s)
        for kind in ("kpi_snapshot", "kpi_snapshot", "kpi_snapshot"):
            outbox.enqueue(
                s, site="hn", package_type=kind, record=all_records()[kind], key=KeyRing(tmp / "keys").current()
            )
    export = tmp / "export"
    assert _run("export", "-c", str(config), "--out", str(export))[0] == 0
    keys = str(export / PUBLIC_KEYS)

    # Dropping an entry from the manifest breaks its signature: named.
    manifest = json.loads((export / MANIFEST).read_text())
    manifest["packages"].pop(1)
    (export / MANIFEST).write_text(json.dumps(manifest))
    code, out = _run("verify", str(export), "--keys", keys)
    assert code == 1 and "manifest.json: signature does not match" in out

    # A manifest signed by a stranger is refused too.
    export2 = tmp / "export2"
    assert _run("export", "-c", str(config), "--out", str(export2))[0] == 0
    (export2 / "stray.json").write_text("{}")
    code, out = _run("verify", str(export2), "--keys", keys)
    assert code == 1 and "stray.json: not listed in the manifest" in out
    stranger = KeyRing(tmp / "stranger")
    stranger.generate("hn")
    (tmp / "stranger.json").write_text(json.dumps(stranger.public_set().to_json()))
    code, out = _run("verify", str(export2), "--keys", str(tmp / "stranger.json"))
    assert code == 1 and "unknown key" in out


def test_outbox_list_and_push_without_endpoint(setup: tuple[Path, Path]) -> None:
    config, _ = setup
    code, out = _run("outbox", "list", "-c", str(config))
    assert code == 0 and "seq" in out
    code, out = _run("push", "-c", str(config))
    assert code == 2 and "endpoint" in out
