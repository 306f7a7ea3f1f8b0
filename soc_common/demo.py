"""``soc demo`` (what ``make run`` runs): the whole SOC on this machine, on sample data.

It writes one configuration file per role under the demo folder, then drives the real programs the
way an operator would: ``soc collector run`` and ``soc api serve`` as services, an enrolment token,
``soc agent enroll``, and the agent replaying the bundled captures and sample logs through its
spool to the collector over mutual TLS. Alerts are read back through the SOC API, so what is
printed is what an officer sees. Nothing here is a shortcut around a component.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)

DEMO_ZONES = [
    ("datacenter", ["10.0.0.0/24"]),
    ("party-wan", ["10.10.0.0/16"]),
    ("office", ["192.168.0.0/16", "172.16.0.0/12"]),
    ("internet", ["0.0.0.0/0", "::/0"]),  # longest prefix wins: everything not named above
]


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


@dataclass
class DemoLayout:
    """Where everything of one demo run lives, and its ports."""

    root: Path
    repo: Path
    ingest_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)

    @property
    def collector_toml(self) -> Path:
        return self.root / "collector.toml"

    @property
    def api_toml(self) -> Path:
        return self.root / "api.toml"

    @property
    def agent_toml(self) -> Path:
        return self.root / "agent.toml"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'soc.db'}"

    @property
    def events_db(self) -> Path:
        return self.root / "events.db"

    def write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        zones = "\n".join(
            f"[[enrich.zones]]\nname = {json.dumps(name)}\ncidrs = {_toml_list(cidrs)}\n" for name, cidrs in DEMO_ZONES
        )
        self.collector_toml.write_text(
            f"""# written by soc demo
data_dir = {json.dumps(str(self.root / "collector"))}

[ingest]
port = {self.ingest_port}

[store]
kind = "sqlite"
sqlite_path = {json.dumps(str(self.events_db))}

[detection]
rule_paths = [{json.dumps(str(self.repo / "rules"))}]

[alerts]
database_url = {json.dumps(self.db_url)}

[metrics]
port = {self.metrics_port}

[enrich]
default_site = "tinh-uy"

{zones}""",
            encoding="utf-8",
        )
        self.api_toml.write_text(
            f"""# written by soc demo
data_dir = {json.dumps(str(self.root / "api"))}

[database]
url = {json.dumps(self.db_url)}

[listen]
port = {self.api_port}

[security]
cookie_secure = false  # plain HTTP on loopback for the demo only

[store]
kind = "sqlite"
sqlite_path = {json.dumps(str(self.events_db))}
""",
            encoding="utf-8",
        )
        self.agent_toml.write_text(
            f"""# written by soc demo
collector_url = "https://127.0.0.1:{self.ingest_port}"
data_dir = {json.dumps(str(self.root / "agent"))}

[host]
site = "tinh-uy"
""",
            encoding="utf-8",
        )


def soc_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "soc_common", *args]


def run_step(what: str, args: list[str], *, stdin: str | None = None, timeout: float = 600) -> str:
    """Run one ``soc`` command to completion; raise DemoError with its output if it fails."""
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise DemoError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def wait_http(url: str, what: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until ``url`` answers (any HTTP status) or the service died."""
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only a liveness probe; the agent verifies the pinned CA itself
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{what} exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise DemoError(f"{what} did not answer at {url} within {timeout:.0f} s")


class ApiClient:
    """The few SOC API calls the demo makes, as an officer's script would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def login(self, username: str, password: str) -> None:
        self.token = self._call("POST", "/api/v1/auth/login", {"username": username, "password": password})[
            "access_token"
        ]

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/api/v1/alerts?limit={limit}")["items"])

    def alert(self, alert_id: str) -> dict[str, Any]:
        """The alert with its matching events (the list leaves them out)."""
        return dict(self._call("GET", f"/api/v1/alerts/{alert_id}"))


@dataclass
class DemoResult:
    alerts: list[dict[str, Any]]
    api_url: str
    username: str
    password: str


def _alert_origin(alert: dict[str, Any]) -> str:
    # alert event copies carry flat dotted keys (see collector.detection.alerts)
    datasets = {str(e.get("event.dataset") or e.get("event", {}).get("dataset", "")) for e in alert.get("events") or []}
    if any(d.startswith("network_traffic") for d in datasets):
        return "pcap"
    if any(d.startswith(("system.", "nginx", "apache", "json")) for d in datasets):
        return "log"
    return "other"


def wait_for_alerts(client: ApiClient, timeout: float) -> list[dict[str, Any]]:
    """Poll the API until alerts from both a capture and a log file are there (or time runs out)."""
    deadline = time.monotonic() + timeout
    details: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for summary in client.alerts():
            if summary["id"] not in details:
                details[summary["id"]] = client.alert(summary["id"])
        if {"pcap", "log"} <= {_alert_origin(a) for a in details.values()}:
            break
        time.sleep(1)
    return list(details.values())


def print_alerts(alerts: list[dict[str, Any]]) -> None:
    table = Table(title=f"Cảnh báo / Alerts ({len(alerts)})")
    for col in ("severity", "rule", "host", "source", "from"):
        table.add_column(col)
    for a in sorted(alerts, key=lambda a: str(a.get("timestamp"))):
        table.add_row(
            str(a.get("severity")),
            str(a.get("rule_title")),
            str(a.get("host_name") or "-"),
            str(a.get("source_ip") or "-"),
            _alert_origin(a),
        )
    Console().print(table)


class Services:
    """The long-running children; stopped together, politely first."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        fh = log.open("ab")
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                console.print(f"{name} did not stop in time; killing it")
                proc.kill()
                proc.wait()


def run_demo(layout: DemoLayout, services: Services, *, timeout: float = 300) -> DemoResult:
    """Bring everything up and feed it; return the alerts the API shows."""
    repo = layout.repo
    layout.write_configs()
    logs = layout.root / "logs"
    logs.mkdir(exist_ok=True)

    console.print("[bold]1/6[/] SOC database and administrator")
    password = secrets.token_urlsafe(12)
    run_step("database migration", soc_command("api", "migrate", "--config", str(layout.api_toml)))
    run_step(
        "administrator account",
        soc_command(
            "api",
            "user",
            "create",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            "--config",
            str(layout.api_toml),
        ),
        stdin=password + "\n",
    )

    console.print("[bold]2/6[/] collector (agent ingest, pipeline, Sigma detection) and SOC API")
    collector = services.start(
        "collector",
        soc_command("collector", "run", "--config", str(layout.collector_toml)),
        logs / "collector.log",
    )
    api = services.start("api", soc_command("api", "serve", "--config", str(layout.api_toml)), logs / "api.log")
    wait_http(f"https://127.0.0.1:{layout.ingest_port}/health", "collector", collector)
    api_url = f"http://127.0.0.1:{layout.api_port}"
    wait_http(f"{api_url}/health", "SOC API", api)

    console.print("[bold]3/6[/] enrolment token and agent enrolment (mutual TLS, pinned CA)")
    token = run_step(
        "enrolment token",
        soc_command("collector", "token", "create", "--site", "tinh-uy", "--config", str(layout.collector_toml)),
    ).strip()
    fingerprint = (
        run_step(
            "CA fingerprint",
            soc_command("collector", "ca", "fingerprint", "--config", str(layout.collector_toml)),
        )
        .strip()
        .split()[-1]
    )
    run_step(
        "agent enrolment",
        soc_command(
            "agent", "enroll", "--collector", f"https://127.0.0.1:{layout.ingest_port}", "--token", token,
            "--ca-fingerprint", fingerprint, "--config", str(layout.agent_toml),
        ),
    )  # fmt: skip

    pcaps = sorted((repo / "pcaps").glob("*.pcap"))
    logs_in = sorted(p for p in (repo / "samples" / "logs").glob("*") if p.is_file())
    console.print(f"[bold]4/6[/] agent replays {len(pcaps)} captures from pcaps/")
    if pcaps:
        run_step(
            "pcap replay",
            soc_command("agent", "replay-pcap", *map(str, pcaps), "--config", str(layout.agent_toml)),
        )
    console.print(f"[bold]5/6[/] agent ships {len(logs_in)} sample log files from samples/logs/")
    if logs_in:
        run_step(
            "log shipping",
            soc_command("agent", "send-file", *map(str, logs_in), "--config", str(layout.agent_toml)),
        )

    console.print("[bold]6/6[/] waiting for alerts in the SOC API")
    client = ApiClient(api_url)
    client.login("admin", password)
    alerts = wait_for_alerts(client, timeout)
    return DemoResult(alerts=alerts, api_url=api_url, username="admin", password=password)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the demo the same way Ctrl-C does."""
    raise KeyboardInterrupt


def demo_command(
    data_dir: Path = typer.Option(Path("data/demo"), "--data-dir", help="Where the demo keeps its data (wiped first)."),
    repo: Path = typer.Option(Path("."), "--repo", help="The repository checkout (rules/, pcaps/, samples/)."),
    exit_after: bool = typer.Option(False, "--exit-after", help="Stop once the alerts are shown (for scripts)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the alerts."),
) -> None:
    """Bring the whole SOC up on sample data: collector, detection, API, and an agent replaying samples."""
    repo = repo.resolve()
    if not (repo / "rules").is_dir() or not (repo / "pcaps").is_dir():
        console.print(f"{repo} is not the repository checkout (no rules/ or pcaps/); pass --repo")
        raise typer.Exit(2)
    root = data_dir.resolve()
    if root.exists():
        shutil.rmtree(root)
    layout = DemoLayout(root=root, repo=repo)
    services = Services()
    try:
        result = run_demo(layout, services, timeout=timeout)
        print_alerts(result.alerts)
        origins = {_alert_origin(a) for a in result.alerts}
        console.print(
            f"\nSOC API and web pages: [bold]{result.api_url}/[/]  (user [bold]{result.username}[/], "
            f"password [bold]{result.password}[/])\nLogs: {root / 'logs'}"
        )
        if not {"pcap", "log"} <= origins:
            console.print(f"[red]expected alerts from a capture and from a log file; got {sorted(origins)}[/]")
            raise typer.Exit(1)
        if exit_after:
            return
        console.print("Running. Ctrl-C stops everything.")
        signal.signal(signal.SIGTERM, _interrupt)
        while all(p.poll() is None for _, p in services.procs):
            time.sleep(1)
        console.print("[red]a service stopped unexpectedly; see the logs[/]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping")
    except DemoError as exc:
        console.print(f"[red]demo failed:[/] {exc}\nLogs: {root / 'logs'}")
        raise typer.Exit(1) from None
    finally:
        services.stop()
