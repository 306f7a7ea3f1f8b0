"""``soc agent ...``: run, enrol, status, one-shot sends and service installation.

Exit codes: 0 ok, 1 a problem (collector refused, events left unsent), 2 usage or configuration error.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer

from agent.config import AgentConfig, load_agent_config
from agent.enroll import EnrollError, enroll
from agent.status import read_status, render_status, status_path
from soc_common.config import ConfigError
from soc_common.ecs import Event, put, stable_event_id

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
BATCH = 500
UNIT_NAME = "soc-agent.service"
STATE_DIR = "/var/lib/soc-agent"
STARTER_CONFIG = f"""# SOC agent configuration. Enrol first: soc agent enroll --collector URL --token TOKEN ...
data_dir = "{STATE_DIR}"
# collector_url = "https://collector.example:8443"   # default: the URL used at enrolment

# [host]
# site = "..."        # the office
# zone = "..."
# system_id = "..."

# Without [[sources]] only the host inventory runs; add files/journald/flows sources here or centrally.
"""
UNIT_SOURCE = Path(__file__).resolve().parents[1] / "deploy" / "agent" / UNIT_NAME

app = typer.Typer(help="The SOC agent on this host.", no_args_is_help=True, add_completion=False)

ConfigOption = typer.Option(None, "--config", "-c", help="Agent configuration file (default /etc/soc/agent.toml).")


def _load(path: Path | None) -> AgentConfig:
    try:
        return load_agent_config(path)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def run(
    config: Path | None = ConfigOption,
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the agent in the foreground; Ctrl-C or SIGTERM stops it cleanly."""
    from agent.runtime import Agent
    from agent.spool import SpoolLocked

    cfg = _load(config)
    _logging(verbose)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        logging.getLogger("agent").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        agent = Agent(cfg)
    except SpoolLocked as exc:
        typer.echo(f"{exc} (is the agent already running?)", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    agent.run(stop)


@app.command("enroll")
def enroll_command(
    collector: str = typer.Option(..., "--collector", help="Collector URL, https://host:8443"),
    token: str = typer.Option(
        ...,
        "--token",
        envvar="SOC_ENROLL_TOKEN",
        help="Enrolment token from 'soc collector token create' (or $SOC_ENROLL_TOKEN, kept out of ps).",
    ),
    ca_fingerprint: str | None = typer.Option(
        None, "--ca-fingerprint", help="SHA-256 of the collector CA, from 'soc collector ca fingerprint'."
    ),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="The collector CA certificate (PEM)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Trust the CA fingerprint shown without asking."),
    config: Path | None = ConfigOption,
) -> None:
    """Enrol this host with a collector (once)."""
    cfg = _load(config)

    def confirm(fingerprint: str) -> bool:
        typer.echo(f"Collector CA fingerprint: SHA256 {fingerprint}")
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        return typer.confirm("Does it match 'soc collector ca fingerprint' on the collector?")

    try:
        creds = enroll(collector, token, cfg.data_dir, ca_fingerprint=ca_fingerprint, ca_file=ca_file, confirm=confirm)
    except EnrollError as exc:
        typer.echo(f"enrolment failed: {exc}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None
    typer.echo(f"enrolled as agent {creds.agent_id}; credentials in {creds.directory}")


@app.command()
def status(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the full status as JSON."),
) -> None:
    """Show what the running agent reports: sources, spool, shipping, errors."""
    cfg = _load(config)
    data = read_status(status_path(cfg.data_dir))
    if data is None:
        typer.echo(f"no status at {status_path(cfg.data_dir)}: the agent has not run with this data_dir", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    typer.echo(json.dumps(data, indent=2) if as_json else render_status(data))


def _send(cfg: AgentConfig, batches: Iterable[list[Event]], wait: bool, timeout: float, label: str) -> int:
    """Push batches through a one-shot spool/shipper; return how many events were sent."""
    from rich.progress import Progress

    from agent.runtime import OneShot

    shot = OneShot(cfg)
    if wait and not shot.collector_url:
        typer.echo("not enrolled and no collector_url: run 'soc agent enroll' first (or use --no-wait)", err=True)
        raise typer.Exit(EXIT_USAGE)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(label, total=None)
        try:
            for batch in batches:
                shot.send(batch)
                progress.update(task, description=f"{label}: {shot.spooled} spooled, {shot.shipper.acked} sent")
        finally:

            def show(acked: int, total: int) -> None:
                progress.update(task, total=total, completed=acked, description=f"{label}: acknowledged")

            left = shot.finish(wait, timeout, show)
    if wait and left:
        error = shot.shipper.last_error or "timeout"
        typer.echo(f"{left} events not acknowledged ({error}); the running agent will send them", err=True)
    elif not wait:
        typer.echo(f"{shot.spooled} events spooled; the running agent sends them")
    return shot.spooled - left


def _batched(events: Iterable[Event]) -> Iterator[list[Event]]:
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


WaitOption = typer.Option(True, "--wait/--no-wait", help="Wait until the collector acknowledged everything.")
TimeoutOption = typer.Option(600.0, "--timeout", help="Seconds to wait for acknowledgements.")


@app.command("replay-pcap")
def replay_pcap(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False),
    config: Path | None = ConfigOption,
    wait: bool = WaitOption,
    timeout: float = TimeoutOption,
) -> None:
    """Meter capture files into flow/DNS/TLS/HTTP events and send them like live traffic."""
    from agent.flows import events_from_pcap
    from agent.flows.pcap import PcapError

    cfg = _load(config)
    failed: list[str] = []

    def events() -> Iterator[Event]:
        for path in files:
            try:
                yield from events_from_pcap(path)
            except PcapError as exc:
                failed.append(f"{path}: {exc}")

    sent = _send(cfg, _batched(events()), wait, timeout, "replay")
    for problem in failed:
        typer.echo(f"damaged capture: {problem}", err=True)
    typer.echo(f"events: {sent} delivered, captures with errors: {len(failed)}")
    if failed or (wait and sent == 0 and not files):
        raise typer.Exit(EXIT_PROBLEM)


@app.command("import-evtx")
def import_evtx(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False),
    config: Path | None = ConfigOption,
    wait: bool = WaitOption,
    timeout: float = TimeoutOption,
) -> None:
    """Read .evtx files and send their records as Windows events."""
    from agent.windows.evtx_file import EvtxStats, read_evtx

    cfg = _load(config)
    stats = EvtxStats()

    def events() -> Iterator[Event]:
        for path in files:
            yield from read_evtx(path, stats=stats)

    sent = _send(cfg, _batched(events()), wait, timeout, "import")
    typer.echo(f"records: {stats.records}, failed: {stats.failed}, events delivered: {sent}")
    for problem in stats.file_errors:
        typer.echo(f"file error: {problem}", err=True)
    if stats.file_errors:
        raise typer.Exit(EXIT_PROBLEM)


def file_events(path: Path, fmt: str, host: str) -> Iterator[Event]:
    """Parse a log file line by line; ids come from (host, path, offset) so a re-send is a duplicate."""
    from soc_common.parsers import parse_line

    absolute = str(path.resolve())
    offset = 0
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if line:
                event = parse_line(line, fmt)
                put(event, "event.id", stable_event_id(host, absolute, offset))
                put(event, "log.file.path", absolute)
                put(event, "log.offset", offset)
                yield event
            offset += len(raw)


@app.command("send-file")
def send_file(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False),
    fmt: str = typer.Option("auto", "--format", help="auto, syslog, authlog, access, json, raw ..."),
    config: Path | None = ConfigOption,
    wait: bool = WaitOption,
    timeout: float = TimeoutOption,
) -> None:
    """Read log files once through the line parsers and send the events."""
    from agent.runtime import host_id
    from soc_common.parsers import formats

    if fmt != "auto" and fmt not in formats():
        typer.echo(f"unknown --format {fmt!r}; known: auto, {', '.join(formats())}", err=True)
        raise typer.Exit(EXIT_USAGE)
    cfg = _load(config)
    host = host_id(cfg.data_dir)

    def events() -> Iterator[Event]:
        for path in files:
            yield from file_events(path, fmt, host)

    sent = _send(cfg, _batched(events()), wait, timeout, "send")
    typer.echo(f"events delivered: {sent}")


def _render_unit(source: Path, soc_binary: str) -> str:
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={soc_binary} agent run --config /etc/soc/agent.toml"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _systemd_present(root: Path) -> bool:
    return root == Path("/") and Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


@app.command()
def install(
    root: Path = typer.Option(Path("/"), "--root", help="Install below this folder (packaging, tests)."),
    unit_file: Path = typer.Option(UNIT_SOURCE, "--unit-file", help="The unit to install."),
) -> None:
    """Install the agent as a service (systemd on Linux, a Windows service on Windows)."""
    if platform.system() == "Windows":  # pragma: no cover - Windows only
        from agent.windows.service import install_service

        install_service()
        return
    if not unit_file.exists():
        typer.echo(f"unit file not found: {unit_file} (pass --unit-file)", err=True)
        raise typer.Exit(EXIT_USAGE)
    soc = shutil.which("soc") or str(Path(sys.executable).with_name("soc"))
    target = root / "etc/systemd/system" / UNIT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_render_unit(unit_file, soc), encoding="utf-8")
    typer.echo(f"wrote {target}")
    config = root / "etc/soc/agent.toml"
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(STARTER_CONFIG, encoding="utf-8")
        typer.echo(f"wrote {config}")
    if _systemd_present(root):
        if shutil.which("useradd") and subprocess.run(["id", "soc-agent"], capture_output=True).returncode:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "soc-agent"],
                check=False,
            )
        state = Path(STATE_DIR)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(["chown", "soc-agent:soc-agent", str(state)], check=False)
        for cmd in (["systemctl", "daemon-reload"], ["systemctl", "enable", UNIT_NAME]):
            if subprocess.run(cmd, check=False).returncode:
                typer.echo(f"'{' '.join(cmd)}' failed", err=True)
                raise typer.Exit(EXIT_PROBLEM)
        typer.echo("enabled; start with: systemctl start soc-agent")
    else:
        typer.echo("systemd not running here: enable the unit yourself")


@app.command()
def uninstall(root: Path = typer.Option(Path("/"), "--root")) -> None:
    """Remove the service (the data folder is kept)."""
    if platform.system() == "Windows":  # pragma: no cover - Windows only
        from agent.windows.service import uninstall_service

        uninstall_service()
        return
    target = root / "etc/systemd/system" / UNIT_NAME
    if _systemd_present(root):
        subprocess.run(["systemctl", "disable", "--now", UNIT_NAME], check=False)
    if target.exists():
        os.remove(target)
        typer.echo(f"removed {target}")
    if _systemd_present(root):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
