"""``soc api ...``: serve, migrate, manage users and API keys, verify the audit trail."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.config import ApiConfig, load_api_config
from soc_api.db.migrate import upgrade
from soc_api.db.models import ROLES, Site, User
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.services import audit
from soc_api.services.auth import AuthError, create_api_key, create_user
from soc_common.ecs import utc_now

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
user_app = typer.Typer(no_args_is_help=True, help="Manage people's accounts.")
apikey_app = typer.Typer(no_args_is_help=True, help="Manage API keys for machines.")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration file.")]
console = Console()


def _config(path: Path | None) -> ApiConfig:
    return load_api_config(path)


def _sessions(config: ApiConfig) -> sessionmaker[Session]:
    upgrade(config.database.url)
    return make_session_factory(make_engine(config.database.url))


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """Run the API and web pages with uvicorn (migrates the database first)."""
    import uvicorn

    from soc_api.app import create_app

    cfg = _config(config)
    if not cfg.listen.tls and not cfg.listen.is_loopback() and not cfg.listen.insecure_plaintext:
        typer.echo(
            f"refusing to serve plain HTTP on {cfg.listen.host}: set listen.tls_cert/tls_key "
            "(or listen.insecure_plaintext = true behind a TLS proxy)",
            err=True,
        )
        raise typer.Exit(2)
    uvicorn.run(
        create_app(cfg),
        host=cfg.listen.host,
        port=cfg.listen.port,
        ssl_certfile=str(cfg.listen.tls_cert) if cfg.listen.tls_cert else None,
        ssl_keyfile=str(cfg.listen.tls_key) if cfg.listen.tls_key else None,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Bring the SOC database schema to the latest version."""
    cfg = _config(config)
    upgrade(cfg.database.url)
    typer.echo("database at the latest schema")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    site: Annotated[str | None, typer.Option("--site", help="Limit to this site and below (default: all).")] = None,
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    email: Annotated[str | None, typer.Option("--email")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Create an account (the password is asked for, or read from stdin; never an argument)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    sessions = _sessions(_config(config))
    try:
        with sessions.begin() as session:
            begin_write(session)
            if site is not None and session.get(Site, site) is None:
                session.add(Site(code=site, name=site))
            user = create_user(
                session, username=username, password=password, role=role, site_scope=site,
                display_name=display_name, email=email, actor="cli",
            )  # fmt: skip
            typer.echo(f"created user {user.username} ({user.role}, site: {site or 'all'})")
    except AuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@user_app.command("list")
def user_list(config: ConfigOpt = None) -> None:
    """List accounts (never hashes or secrets)."""
    sessions = _sessions(_config(config))
    table = Table("username", "role", "site", "active", "2FA", "locked until", "last login")
    with sessions() as session:
        for u in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                u.username, u.role, u.site_scope or "*", "yes" if u.is_active else "no",
                "yes" if u.totp_enabled else "no", str(u.locked_until or ""), str(u.last_login_at or ""),
            )  # fmt: skip
    console.print(table)


@app.command("verify-audit")
def verify_audit(config: ConfigOpt = None) -> None:
    """Check the audit hash chain: exit 0 if intact, 1 naming the first altered entry."""
    sessions = _sessions(_config(config))
    with sessions() as session:
        result = audit.verify(session)
    if result.ok:
        typer.echo(f"audit trail intact ({result.checked} entries)")
        return
    typer.echo(f"audit trail ALTERED at seq {result.first_bad_seq}: {result.reason}", err=True)
    raise typer.Exit(1)


@apikey_app.command("create")
def apikey_create(
    name: str,
    scopes: Annotated[
        list[str], typer.Option("--scopes", help="Scope(s), e.g. alerts:read; repeat or comma-separate.")
    ],
    site: Annotated[str | None, typer.Option("--site")] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Expire after this many days.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create an API key and print its secret once."""
    flat = [s.strip() for item in scopes for s in item.split(",") if s.strip()]
    sessions = _sessions(_config(config))
    try:
        with sessions.begin() as session:
            begin_write(session)
            expires = utc_now() + timedelta(days=days) if days else None
            new = create_api_key(session, name=name, scopes=flat, site_scope=site, expires_at=expires, actor="cli")
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(new.secret)
    typer.echo("store it now: it is not shown again", err=True)
