"""``soc hunt``'s fast command-line path agrees with Typer's, and hands Typer what it cannot parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import collector.detection.hunt as hunt_module
from collector.detection.hunt_argv import parse_hunt_argv
from collector.detection.hunt_run import HuntOptions
from detection.helpers import REPO, rule_yaml

PLAIN = [
    ["-r", "rules", "in.evtx"],
    ["--rules", "a", "--rules=b", "-rc", "x", "y", "--format", "jsonl", "-o", "out.jsonl"],
    ["x", "-r", "r", "-f", "csv", "--status", "test", "--status=stable", "--level", "high", "--fail-on-match"],
    ["-r", "r", "--no-cache", "-j", "3", "--skipped-report", "skip.jsonl", "x"],
    ["-r", "r", "-j0", "--workers=2", "--output=o", "--", "-odd-name", "--rules"],
    ["-r", "r", "-", "x"],
]


def _typer_options(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> HuntOptions:
    """What Typer hands the hunt for ``argv``, caught before anything runs."""
    seen: list[HuntOptions] = []

    def capture(opts: HuntOptions) -> int:
        seen.append(opts)
        return 0

    monkeypatch.setattr(hunt_module, "execute", capture)
    app = typer.Typer()
    app.command()(hunt_module.hunt_command)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("argv", PLAIN)
def test_fast_parse_equals_typer(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_hunt_argv(argv) == _typer_options(argv, monkeypatch)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-r", "r", "x", "--help"],
        ["-r", "r", "x", "--unknown"],
        ["-r", "r", "x", "-j", "-1"],
        ["-r", "r", "x", "-j", "two"],
        ["-r", "r", "x", "--fail-on-match=yes"],
        ["-r", "r", "x", "-o"],
        ["-r", "r"],
        ["x", "y"],
        [],
    ],
)
def test_gives_up_on_what_typer_must_word(argv: list[str]) -> None:
    assert parse_hunt_argv(argv) is None


def _soc(args: list[str], tmp_path: Path, code: str = "") -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\nfrom soc_common.cli import main\nsys.argv = ['soc', *sys.argv[1:]]\n"
        f"try:\n    main()\nfinally:\n{code or '    pass'}\n"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def hunt_files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(rule_yaml("sel:\n    user: bob\ncondition: sel"), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"user": u}) for u in ("bob", "eve", "bob")) + "\n", encoding="utf-8")
    return rules, events


def test_soc_hunt_runs_without_pydantic(tmp_path: Path, hunt_files: tuple[Path, Path]) -> None:
    """The start-up this path exists for: Typer's per-parameter pydantic validators are not built."""
    rules, events = hunt_files
    out = tmp_path / "out.jsonl"
    check = "    print('pydantic loaded:', 'pydantic' in sys.modules, file=sys.stderr)"
    done = _soc(["hunt", "-r", str(rules), "-f", "jsonl", "-o", str(out), str(events)], tmp_path, check)
    assert done.returncode == 0, done.stderr
    assert "pydantic loaded: False" in done.stderr
    assert "matches: 2" in done.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["source"]["record"], x["event"]["user"]) for x in lines] == [(1, "bob"), (3, "bob")]


def test_soc_hunt_exit_codes_and_typer_errors(tmp_path: Path, hunt_files: tuple[Path, Path]) -> None:
    rules, events = hunt_files
    failing = _soc(["hunt", "-r", str(rules), "--fail-on-match", "-o", str(tmp_path / "t"), str(events)], tmp_path)
    assert failing.returncode == 1, failing.stderr
    bad_format = _soc(["hunt", "-r", str(rules), "-f", "xml", str(events)], tmp_path)
    assert bad_format.returncode == 2 and "--format must be one of" in bad_format.stderr
    missing = _soc(["hunt", "-r", str(rules), str(tmp_path / "nope")], tmp_path)
    assert missing.returncode == 2 and "not found:" in missing.stderr
    negative = _soc(["hunt", "-r", str(rules), "-j", "-1", str(events)], tmp_path)  # Typer's own message
    assert negative.returncode == 2 and "--workers" in negative.stderr
