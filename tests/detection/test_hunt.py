"""``soc hunt`` end to end through Typer: inputs, formats, exit codes, skipped-rule report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from collector.detection.hunt import hunt_command
from detection.helpers import RULES, SHARED, rule_yaml

pytest.importorskip("soc_common.parsers", reason="line parsers (soc_common.parsers) not installed")

app = typer.Typer()
app.command()(hunt_command)
runner = CliRunner()

AUTH_LINES = "\n".join(
    [f"Jan 10 12:00:{i:02d} web1 sshd[1]: Failed password for bob from 203.0.113.9 port 5{i} ssh2" for i in range(12)]
    + [
        "Jan 10 12:01:00 web1 sshd[2]: Accepted publickey for root from 203.0.113.9 port 6 ssh2",
        "garbage \x00 line",
    ]
)
WINDOWS_EXPORT = {
    "Event": {
        "System": {
            "EventID": 1102,
            "Channel": "Security",
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Eventlog"}},
            "Computer": "PC-9",
            "EventRecordID": 7,
            "TimeCreated": {"#attributes": {"SystemTime": "2025-01-10T08:00:00Z"}},
        },
        "EventData": {"SubjectUserName": "eve"},
    }
}


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--no-cache", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "auth.log").write_text(AUTH_LINES, encoding="utf-8")
    (folder / "sub" / "export.json").write_text(json.dumps([WINDOWS_EXPORT, 5]), encoding="utf-8")
    flows = [
        {
            "@timestamp": f"2025-01-10T08:00:{p % 60:02d}Z",
            "event": {"dataset": "network_traffic.flow"},
            "source": {"ip": "10.0.0.66"},
            "destination": {"ip": "10.0.0.1", "port": p},
        }
        for p in range(1, 121)
    ]
    (folder / "sub" / "flows.jsonl").write_text("\n".join(json.dumps(f) for f in flows) + "\n{broken\n")
    return folder


def test_jsonl_output_shape_and_correlations(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    code, _, err = _run("--rules", str(RULES), "--format", "jsonl", "--output", str(out), str(inputs))
    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    titles = [x["rule"]["title"] for x in lines]
    assert titles.count("SSH Brute Force From One Source") == 1
    assert "SSH Login As Root" in titles
    assert "Security Event Log Cleared" in titles
    assert "Port Scan From One Source" in titles
    for line in lines:
        assert set(line) <= {"rule", "event", "source", "correlation"}
        assert set(line["rule"]) == {"id", "title", "level", "tags"}
        assert line["source"]["record"] >= 1 and Path(line["source"]["file"]).exists()
    brute = next(x for x in lines if x["rule"]["title"] == "SSH Brute Force From One Source")
    assert brute["correlation"]["observed"] == 10 and brute["correlation"]["group_by"] == {"source.ip": "203.0.113.9"}
    assert brute["source"]["record"] == 10  # the last contributing event
    assert "events read: 135" in err and "bad records: 3" in err


def test_csv_and_table_formats(inputs: Path) -> None:
    code, out, _ = _run("--rules", str(RULES / "windows"), "--format", "csv", str(inputs))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["rule_id", "title", "level"] and rows[1][1] == "Security Event Log Cleared"
    code, out, _ = _run("--rules", str(RULES / "windows"), "--format", "table", str(inputs))
    assert code == 0 and "Security Event Log Cleared" in out and "PC-9" in out


def test_exit_codes_and_skipped_report(inputs: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yml").write_text(rule_yaml("sel:\n    f|expand: '%nope%'\ncondition: sel"))
    (rules / "root.yml").write_text((RULES / "linux" / "sshd_root_login.yml").read_text())
    report = tmp_path / "skipped.jsonl"
    code, _, err = _run("--rules", str(rules), "--skipped-report", str(report), "--fail-on-match", str(inputs))
    assert code == 1
    assert "placeholder" in err
    assert json.loads(report.read_text().splitlines()[0])["reason"].startswith("unresolved placeholder")
    assert _run("--rules", str(rules), "--level", "critical", "--fail-on-match", str(inputs))[0] == 0
    assert _run("--rules", str(rules), "--format", "xml", str(inputs))[0] == 2
    assert _run("--rules", str(rules), str(tmp_path / "missing"))[0] == 2


def test_hunt_over_evtx_samples(tmp_path: Path) -> None:
    pytest.importorskip("agent.windows.evtx_file", reason="EVTX reader not installed")
    sample = SHARED / "evtx-attack-samples" / "Credential Access" / "kerberos_pwd_spray_4771.evtx"
    if not sample.exists():
        pytest.skip("EVTX samples not present at ../shared/data")
    code, out, _ = _run("--rules", str(RULES / "windows"), "--format", "jsonl", str(sample))
    assert code == 0
    assert any(json.loads(x)["rule"]["title"] == "Security Event Log Cleared" for x in out.splitlines())
