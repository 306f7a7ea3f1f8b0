"""The ``soc`` command: every sub-command has working help, and bad configuration is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from soc_common import cli


def _all_command_paths() -> list[list[str]]:
    cli._register(None)
    root = typer.main.get_command(cli.app)
    paths: list[list[str]] = []

    def walk(cmd: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(cmd, "commands", {}).items():  # groups have sub-commands
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


COMMAND_PATHS = _all_command_paths()


def run_soc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soc_common", *args], capture_output=True, text=True, input=stdin, timeout=120,
        check=False,
    )  # fmt: skip


def test_every_role_and_command_is_there() -> None:
    names = {tuple(p) for p in COMMAND_PATHS}
    for expected in [("agent", "run"), ("agent", "enroll"), ("agent", "replay-pcap"), ("collector", "run"),
                     ("collector", "token", "create"), ("api", "serve"), ("api", "verify-audit"), ("hunt",),
                     ("demo",), ("doctor",)]:  # fmt: skip
        assert expected in names, expected


def test_help_works_everywhere() -> None:
    """Every group and command answers --help (in-process: one interpreter for all of them)."""
    runner = CliRunner()
    for path in COMMAND_PATHS:
        result = runner.invoke(cli.app, [*path, "--help"], prog_name="soc")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: soc" in result.output, (path, result.output)


def test_help_of_the_installed_entry_point() -> None:
    result = run_soc("agent", "--help")
    assert result.returncode == 0 and "Usage: soc agent" in result.stdout, result.stderr


def test_version() -> None:
    result = run_soc("--version")
    assert result.returncode == 0 and result.stdout.startswith("soc ")


@pytest.mark.parametrize(
    ("role_args", "body", "key"),
    [
        (["collector", "token", "list"], "[ingest]\nport = 'https'\n", "ingest.port"),
        (["api", "migrate"], "[listen]\nport = 70000\n", "listen.port"),
        (["agent", "status"], "[shipping]\nbatch_max_events = 'many'\n", "shipping.batch_max_events"),
    ],
)
def test_bad_config_is_one_line_naming_key_and_file(tmp_path: Path, role_args: list[str], body: str, key: str) -> None:
    config = tmp_path / "role.toml"
    config.write_text(body, encoding="utf-8")
    result = run_soc(*role_args, "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and str(config) in lines[0]


def test_unknown_command_is_a_usage_error() -> None:
    assert run_soc("no-such-command").returncode == 2
