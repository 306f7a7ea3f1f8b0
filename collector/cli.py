"""``soc collector``: run the collector; manage enrolment tokens, agents, the CA and agent policy.

Exit codes follow ``soc_common.cli``: 0 ok, 1 a problem (nothing to revoke, no CA yet), 2 bad usage
or configuration.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from collector.anomaly.cli import app as anomaly_app
from collector.config import CollectorConfig, parse_duration
from collector.detection.scheduled.cli import app as scheduled_app
from soc_common.config import ConfigError, load_config

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
token_app = typer.Typer(no_args_is_help=True, help="Enrolment tokens.")
agent_app = typer.Typer(no_args_is_help=True, help="Enrolled agents.")
ca_app = typer.Typer(no_args_is_help=True, help="The collector's certificate authority.")
policy_app = typer.Typer(no_args_is_help=True, help="Central agent policy.")
app.add_typer(token_app, name="token")
app.add_typer(agent_app, name="agent")
app.add_typer(ca_app, name="ca")
app.add_typer(policy_app, name="policy")
app.add_typer(scheduled_app, name="scheduled", help="Sigma rules on a schedule over Elasticsearch (checkpointed).")
app.add_typer(anomaly_app, name="anomaly", help="Anomaly detection: baselines and behaviour over the event store.")

ConfigOption = typer.Option(None, "--config", "-c", help="collector.toml", envvar="SOC_COLLECTOR_CONFIG")


def _config(path: Path | None) -> CollectorConfig:
    try:
        return load_config(CollectorConfig, path, role="collector")
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@app.command("run")
def run(
    config: Path | None = ConfigOption,
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run the collector until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cfg = _config(config)
    from collector.runtime import Collector

    try:
        Collector(cfg).run()
    except OSError as exc:  # a port in use, an unwritable data folder
        typer.echo(f"collector could not start: {exc}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from None


@token_app.command("create")
def token_create(
    site: str | None = typer.Option(None, "--site", help="Site (office) code the agents belong to."),
    uses: int = typer.Option(1, "--uses", min=1, help="How many agents may enrol with it."),
    ttl: str = typer.Option("24h", "--ttl", help="Validity, e.g. 30m, 24h, 7d."),
    note: str | None = typer.Option(None, "--note"),
    config: Path | None = ConfigOption,
) -> None:
    """Create an enrolment token; it is printed once and stored only hashed."""
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    from collector.ingest.registry import Registry

    registry = Registry(_config(config).registry_path)
    try:
        token, record = registry.create_token(site=site, uses=uses, ttl_seconds=seconds, note=note)
    finally:
        registry.close()
    typer.echo(token)
    typer.echo(
        f"token id {record.id}, site {record.site or '-'}, {record.uses_left} use(s), "
        f"expires {_when(record.expires_at)} (shown once: copy it now)",
        err=True,
    )


@token_app.command("list")
def token_list(config: Path | None = ConfigOption) -> None:
    """List tokens (never their secrets)."""
    from collector.ingest.registry import Registry

    registry = Registry(_config(config).registry_path)
    try:
        tokens = registry.list_tokens()
    finally:
        registry.close()
    now = datetime.now(UTC)
    typer.echo(f"{'ID':<10} {'SITE':<12} {'USES':>4} {'EXPIRES':<21} STATE")
    for t in tokens:
        state = (
            "revoked" if t.revoked_at else "expired" if t.expires_at <= now else "used" if not t.uses_left else "valid"
        )
        typer.echo(f"{t.id:<10} {t.site or '-':<12} {t.uses_left:>4} {_when(t.expires_at):<21} {state}")


@token_app.command("revoke")
def token_revoke(token_id: str = typer.Argument(...), config: Path | None = ConfigOption) -> None:
    """Revoke a token by its id."""
    from collector.ingest.registry import Registry

    registry = Registry(_config(config).registry_path)
    try:
        done = registry.revoke_token(token_id)
    finally:
        registry.close()
    if not done:
        typer.echo(f"no active token {token_id}", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    typer.echo(f"token {token_id} revoked")


@agent_app.command("list")
def agent_list(
    config: Path | None = ConfigOption, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """List enrolled agents."""
    from collector.ingest.registry import Registry

    registry = Registry(_config(config).registry_path)
    try:
        agents = registry.list_agents()
    finally:
        registry.close()
    if as_json:
        typer.echo(json.dumps([a.__dict__ for a in agents], default=str, indent=2))
        return
    typer.echo(f"{'AGENT ID':<33} {'HOSTNAME':<24} {'SITE':<10} {'OS':<8} {'LAST SEEN':<21} STATE")
    for a in agents:
        state = "revoked" if a.revoked_at else "active"
        typer.echo(
            f"{a.id:<33} {a.hostname[:24]:<24} {a.site or '-':<10} {(a.os or '-')[:8]:<8} "
            f"{_when(a.last_seen):<21} {state}"
        )


@agent_app.command("revoke")
def agent_revoke(agent_id: str = typer.Argument(...), config: Path | None = ConfigOption) -> None:
    """Revoke an agent: its certificate is refused (403) from now on (within the server's cache time)."""
    from collector.ingest.registry import Registry

    registry = Registry(_config(config).registry_path)
    try:
        done = registry.revoke_agent(agent_id)
    finally:
        registry.close()
    if not done:
        typer.echo(f"no active agent {agent_id}", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    typer.echo(f"agent {agent_id} revoked")


@ca_app.command("fingerprint")
def ca_fingerprint(config: Path | None = ConfigOption) -> None:
    """Print the SHA-256 fingerprint of the collector CA (agents pin it at enrolment)."""
    from collector.ingest.ca import CertificateAuthority

    ca = CertificateAuthority.load_existing(_config(config).ca_dir)
    if ca is None:
        typer.echo("no CA yet: it is created when the collector first starts", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    typer.echo(f"sha256:{ca.fingerprint}")


@policy_app.command("show")
def policy_show(
    agent_id: str = typer.Option("", "--agent", help="Agent id (its site is looked up)."),
    site: str | None = typer.Option(None, "--site"),
    config: Path | None = ConfigOption,
) -> None:
    """Print the merged policy an agent (or a site) receives, with its version."""
    from collector.ingest.policy import PolicyStore
    from collector.ingest.registry import Registry

    cfg = _config(config)
    if agent_id and site is None:
        registry = Registry(cfg.registry_path)
        try:
            record = registry.get_agent(agent_id)
        finally:
            registry.close()
        if record is None:
            typer.echo(f"unknown agent {agent_id}", err=True)
            raise typer.Exit(EXIT_PROBLEM)
        site = record.site
    version, policy = PolicyStore(cfg.policy_dir).policy_for(agent_id, site)
    typer.echo(json.dumps({"version": version, "policy_dir": str(cfg.policy_dir), "policy": policy}, indent=2))


@app.command("admin-key")
def admin_key(
    name: str = typer.Option("soc-api", "--name", help="Who the key is for (shown in the collector's log)."),
    config: Path | None = ConfigOption,
) -> None:
    """Create an admin API key for /v1/admin/ (docs/collector-admin.md); printed once, stored hashed."""
    from collector.ingest.admin import AdminCredentials, credentials_path

    try:
        key = AdminCredentials(credentials_path(_config(config).state_dir)).create_key(name)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(key)
    typer.echo("admin key created (shown once: put it in the SOC API's [agents] admin_key)", err=True)


@app.command("admin-cert")
def admin_cert(
    out: Path = typer.Option(..., "--out", help="Folder for admin.crt, admin.key and ca.crt."),
    name: str = typer.Option("soc-api", "--name", help="Who the certificate is for."),
    days: int = typer.Option(365, "--days", min=1, max=3650),
    config: Path | None = ConfigOption,
) -> None:
    """Issue an admin client certificate from the collector CA for /v1/admin/ (docs/collector-admin.md)."""
    from collector.ingest.admin import AdminCredentials, credentials_path, issue_admin_cert
    from collector.ingest.ca import CertificateAuthority

    cfg = _config(config)
    try:
        cred_id, cert, key = issue_admin_cert(
            CertificateAuthority(cfg.ca_dir), AdminCredentials(credentials_path(cfg.state_dir)), name, out, days
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"admin certificate {cred_id}: {cert} (key {key}, CA {out / 'ca.crt'})")


@app.command("admin-revoke")
def admin_revoke(cred_id: str = typer.Argument(...), config: Path | None = ConfigOption) -> None:
    """Revoke an admin key or admin certificate by its id."""
    from collector.ingest.admin import AdminCredentials, credentials_path

    if not AdminCredentials(credentials_path(_config(config).state_dir)).revoke(cred_id):
        typer.echo(f"no active admin credential {cred_id}", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    typer.echo(f"admin credential {cred_id} revoked")


if __name__ == "__main__":
    app()
