"""``soc doctor``: check each role's configuration and that everything it points at answers.

A check is a small function returning :class:`Finding` rows; roles whose package is not installed
are skipped with a note. The command exits 1 when any check fails, so scripts and monitoring can
run it.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from soc_common.config import ConfigError

Status = Literal["ok", "warn", "fail", "skip"]
MIN_FREE_BYTES = 1 << 30  # below 1 GiB free the spool/store will soon refuse writes


@dataclass
class Finding:
    role: str
    check: str
    status: Status
    detail: str


Check = Callable[[Any], Iterator[Finding]]


def check_directory(role: str, path: Path) -> Iterator[Finding]:
    """The data folder exists (or can be created), is writable and has room."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as exc:
        yield Finding(role, f"data folder {path}", "fail", f"not writable: {exc}")
        return
    free = shutil.disk_usage(path).free
    status: Status = "ok" if free >= MIN_FREE_BYTES else "warn"
    yield Finding(role, f"data folder {path}", status, f"writable, {free / (1 << 30):.1f} GiB free")


def check_tls_endpoint(role: str, url: str, ca_file: Path | None, timeout: float = 5.0) -> Iterator[Finding]:
    """TCP connect and TLS handshake to ``url``; report certificate expiry and clock skew."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    name = f"reach {parts.scheme}://{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        yield Finding(role, name, "fail", f"cannot connect: {exc}")
        return
    with sock:
        if parts.scheme != "https":
            yield Finding(role, name, "ok", "connected")
            return
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file and ca_file.exists() else None)
        if not (ca_file and ca_file.exists()):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            with ctx.wrap_socket(sock, server_hostname=host) as tls:
                cert = tls.getpeercert()
        except ssl.SSLError as exc:
            yield Finding(role, name, "fail", f"TLS handshake failed: {exc}")
            return
    if not cert:
        yield Finding(role, name, "warn", "connected, certificate not verified (no pinned CA yet)")
        return
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    days = (expires - datetime.now(UTC)).days
    status: Status = "ok" if days > 30 else ("warn" if days > 0 else "fail")
    yield Finding(role, name, status, f"TLS verified, certificate expires in {days} days")


def _run_role(role: str, loader: Callable[[Path | None], Any], checks: list[Check], path: Path | None) -> list[Finding]:
    try:
        config = loader(path)
    except ConfigError as exc:
        return [Finding(role, "configuration", "fail", str(exc))]
    except ImportError as exc:
        return [Finding(role, "installed", "skip", f"role not installed here ({exc.name})")]
    findings = [Finding(role, "configuration", "ok", str(path) if path else "defaults + environment")]
    for check in checks:
        try:
            findings.extend(check(config))
        except Exception as exc:  # a broken check must not hide the others
            findings.append(Finding(role, getattr(check, "__name__", "check"), "fail", f"{type(exc).__name__}: {exc}"))
    return findings


def _default_path(role: str, given: Path | None) -> Path | None:
    if given is not None:
        return given
    system = Path("/etc/soc") / f"{role}.toml"
    return system if system.exists() else None


def collect(paths: dict[str, Path | None], roles: list[str]) -> list[Finding]:
    from soc_common import doctor_checks  # the role-specific checks, imported lazily

    findings: list[Finding] = []
    for role in roles:
        loader, checks = doctor_checks.ROLES[role]
        findings.extend(_run_role(role, loader, checks, _default_path(role, paths.get(role))))
    return findings


def doctor_command(
    agent: Path | None = typer.Option(None, "--agent", help="Agent configuration file."),
    collector: Path | None = typer.Option(None, "--collector", help="Collector configuration file."),
    api: Path | None = typer.Option(None, "--api", help="SOC API configuration file."),
    role: list[str] = typer.Option(
        [], "--role", help="Only these roles (agent, collector, api); default: every role installed here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print findings as JSON lines."),
) -> None:
    """Check configuration, data folders, certificates and reachability; exit 1 if anything fails."""
    roles = role or ["agent", "collector", "api"]
    unknown = [r for r in roles if r not in ("agent", "collector", "api")]
    if unknown:
        typer.echo(f"unknown role: {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    findings = collect({"agent": agent, "collector": collector, "api": api}, roles)
    if as_json:
        for f in findings:
            typer.echo(json.dumps(asdict(f), ensure_ascii=False))
    else:
        table = Table(title="soc doctor")
        for col in ("role", "check", "status", "detail"):
            table.add_column(col)
        colours = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
        for f in findings:
            table.add_row(f.role, f.check, f"[{colours[f.status]}]{f.status}[/]", f.detail)
        Console().print(table)
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(1)
