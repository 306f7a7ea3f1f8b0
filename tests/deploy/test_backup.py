"""soc backup / soc restore on a real deployment: everything comes back, byte for byte and row for row."""

from __future__ import annotations

import io
import shutil
import sqlite3
import stat
import tarfile
from pathlib import Path

import pytest
import typer
from helpers.db_fixtures import postgres_server
from helpers.postgres import PostgresServer
from typer.testing import CliRunner

from soc_common.ops.archive import ArchiveError
from soc_common.ops.backup import backup_command, create_backup, restore_backup, restore_command
from soc_common.ops.envelope import EnvelopeError
from soc_common.ops.plan import build_plan
from soc_common.ops.restore import RestoreRefused

from .world import build_world, fingerprint

__all__ = ["postgres_server"]

PASSPHRASE = "cụm mật khẩu sao lưu 2025"


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    return app


def _destroy(root: Path) -> None:
    shutil.rmtree(root / "var")
    shutil.rmtree(root / "etc")


def test_round_trip_through_the_commands_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path / "site")
    before = fingerprint(world)
    assert before["soc"]["audit_ok"] and len(before["soc"]["alerts"]) == 12 and len(before["events"]) == 300
    monkeypatch.setenv("SOC_BACKUP_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "backup" / "soc.tar.gz"
    runner = CliRunner()
    args = ["backup", "--out", str(out), "--encrypt"]
    args += ["--collector", str(world.collector_cfg), "--api", str(world.api_cfg), "--agent", str(world.agent_cfg)]
    result = runner.invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" not in out.read_bytes()  # encrypted: no key material in clear

    _destroy(world.root)
    result = runner.invoke(_cli(), ["restore", str(out)])
    assert result.exit_code == 0, result.output
    assert "migrated" in result.output
    after = fingerprint(world)
    assert after == before
    ca_key = world.collector().ca_dir / "ca.key"
    assert stat.S_IMODE(ca_key.stat().st_mode) == 0o600


def test_restore_refuses_to_overwrite_then_force_moves_old_data_aside(tmp_path: Path) -> None:
    world = build_world(tmp_path / "site")
    before = fingerprint(world)
    plan = build_plan(world.collector_cfg, world.api_cfg, world.agent_cfg)
    out = tmp_path / "soc.tar.gz"
    create_backup(plan, out)
    secret = world.var / "api" / "api_session_secret"
    secret.write_text("changed after the backup " * 3, encoding="utf-8")
    with pytest.raises(RestoreRefused) as refused:
        restore_backup(out)
    assert any("api-session-secret" in c for c in refused.value.conflicts)
    assert secret.read_text(encoding="utf-8").startswith("changed")  # nothing was touched

    _, report = restore_backup(out, force=True)
    assert fingerprint(world) == before
    assert report.moved_aside and all(".pre-restore-" in p for p in report.moved_aside)
    kept = [Path(p) for p in report.moved_aside if "api_session_secret" in p]
    assert kept and kept[0].read_text(encoding="utf-8").startswith("changed")


def _rewrite_member(archive: Path, target: Path, name_part: str) -> None:
    """Copy the archive, flipping one byte in the first member whose name contains ``name_part``."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        done = False
        for member in src:
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if not done and name_part in member.name:
                data = bytes([data[0] ^ 1]) + data[1:]
                done = True
            dst.addfile(member, io.BytesIO(data))
    assert done


def test_altered_archive_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    world = build_world(tmp_path / "site")
    out = tmp_path / "soc.tar.gz"
    create_backup(build_plan(world.collector_cfg, None, None), out)
    bad = tmp_path / "bad.tar.gz"
    _rewrite_member(out, bad, "ca.key")
    _destroy(world.root)
    with pytest.raises(ArchiveError, match="SHA-256"):
        restore_backup(bad)
    assert not (world.root / "var").exists()
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)
    with pytest.raises(ArchiveError):
        restore_backup(garbage)


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    world = build_world(tmp_path / "site")
    out = tmp_path / "soc.tar.gz"
    create_backup(build_plan(None, world.api_cfg, None), out, passphrase=PASSPHRASE)
    with pytest.raises(EnvelopeError, match="passphrase"):
        restore_backup(out, passphrase="not the passphrase")
    with pytest.raises(EnvelopeError):
        restore_backup(out)


def test_database_from_before_the_schema_comes_back_migrated(tmp_path: Path) -> None:
    """A SOC database at an older revision (here: before the first one) is brought to head."""
    db = tmp_path / "var" / "soc.db"
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE legacy_note (x TEXT)")
    con.execute("INSERT INTO legacy_note VALUES ('giữ lại')")
    con.commit()
    con.close()
    cfg = tmp_path / "api.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "var"}"\n[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    out = tmp_path / "old.tar.gz"
    manifest = create_backup(build_plan(None, cfg, None), out)
    assert next(p for p in manifest.parts if p.name == "soc-database").schema_revision is None
    shutil.rmtree(tmp_path / "var")
    cfg.unlink()
    restore_backup(out)
    con = sqlite3.connect(db)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    assert con.execute("SELECT x FROM legacy_note").fetchall() == [("giữ lại",)]
    con.close()


def test_elasticsearch_store_is_named_as_not_in_the_archive(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "var"}"\n[alerts]\ndatabase_url = ""\n[store]\nkind = "elasticsearch"\n',
        encoding="utf-8",
    )
    plan = build_plan(cfg, None, None)
    assert plan.event_store == "elasticsearch"
    assert any("NOT in this archive" in n for n in plan.notes)
    assert not any(p.kind in ("sqlite", "postgresql") for p in plan.parts)


@pytest.mark.postgres
def test_postgresql_round_trip(tmp_path: Path, postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    world = build_world(tmp_path / "site", db_url=url)
    before = fingerprint(world)
    out = tmp_path / "soc.tar.gz"
    manifest = create_backup(build_plan(world.collector_cfg, world.api_cfg, None), out)
    database = next(p for p in manifest.parts if p.name == "soc-database")
    assert database.kind == "postgresql" and database.schema_revision is not None
    _destroy(world.root)
    # The database is still there: a restore must refuse, then replace it with --force.
    with pytest.raises(RestoreRefused):
        restore_backup(out)
    restore_backup(out, force=True)
    assert fingerprint(world)["soc"] == before["soc"]

    # Into an empty database (a rebuilt server), named by the operator.
    fresh = postgres_server.create_database()
    restore_backup(out, force=True, database_url=fresh)
    assert fingerprint(world)["soc"] == before["soc"]
    from .world import soc_rows

    assert soc_rows(fresh) == before["soc"]
