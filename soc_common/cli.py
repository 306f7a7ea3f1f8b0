"""The ``soc`` command: one entry point, one sub-command group per role.

Role groups are imported lazily so that ``soc agent`` works on a machine where only the agent is
installed; a group whose extra is missing explains which extra to install.

Exit codes, for scripts: 0 success; 1 the command ran and found a problem (failed checks, matches
when asked to fail on them, a refused request); 2 bad usage or configuration; 3 a dependency is not
installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, cast

import typer

from soc_common import __version__
from soc_common.entry import OWN_PACKAGES, fast_hunt

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_MISSING = 3

app = typer.Typer(
    name="soc",
    help="SOC platform: agent, collector, detection, SOC API. Nền tảng giám sát an toàn thông tin.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module, attribute, extra that provides it, help)
_GROUPS: list[tuple[str, str, str, str, str]] = [
    ("agent", "agent.cli", "app", "", "Run, enrol and manage the agent on this host."),
    (
        "collector",
        "collector.cli",
        "app",
        "collector",
        "Run the collector; manage enrolment tokens and agents.",
    ),
    ("api", "soc_api.cli", "app", "api", "Run the SOC API and web pages; manage users and the audit trail."),
    ("handover", "soc_api.handover.cli", "app", "api", "Signed hand-over packages for the central monitoring system."),
    ("central", "soc_api.handover.central", "app", "api", "Central side: receive and verify hand-overs."),
]
# fmt: off
_COMMANDS: list[tuple[str, str, str, str, str]] = [
    ("hunt", "collector.detection.hunt", "hunt_command", "collector", "Evaluate Sigma rules over files, offline."),
    ("demo", "soc_common.demo", "demo_command", "server", "Bring the whole SOC up on this machine on sample data."),
    ("doctor", "soc_common.doctor", "doctor_command", "", "Check configuration and reachability of everything."),
    ("package", "soc_common.ops.package", "package_command", "", "Build an offline installation bundle."),
    ("backup", "soc_common.ops.backup", "backup_command", "server", "Back up database, event store, keys, config."),
    ("restore", "soc_common.ops.backup", "restore_command", "server", "Restore a backup made by 'soc backup'."),
]
# fmt: on


def _missing(name: str, extra: str, error: ImportError) -> typer.Typer:
    stub = typer.Typer(help=f"(not installed: pip install 'soc-platform[{extra}]')")

    @stub.callback(invoke_without_command=True)
    def _explain() -> None:
        typer.echo(f"soc {name}: needs the '{extra}' extra: pip install 'soc-platform[{extra}]' ({error})", err=True)
        raise typer.Exit(EXIT_MISSING)

    return stub


_OWN = OWN_PACKAGES


def _import(module: str, attr: str) -> object:
    """Import a role's entry point; a missing third-party package is reported, our own bugs are not hidden."""
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in _OWN:
            raise
        raise _MissingExtra(exc) from exc


class _MissingExtra(Exception):
    def __init__(self, error: ImportError) -> None:
        super().__init__(str(error))
        self.error = error


def _placeholder(help_text: str) -> typer.Typer:
    """Stands in for a group that this invocation does not use, so ``soc --help`` imports nothing heavy."""
    stub = typer.Typer(help=help_text)

    @stub.callback(invoke_without_command=True)
    def _never() -> None:  # pragma: no cover - only reached if argv parsing disagrees with _target()
        raise typer.Exit(EXIT_USAGE)

    return stub


def _register(target: str | None) -> None:
    """Import only the group or command this invocation names (every one when ``target`` is None)."""
    for name, module, attr, extra, help_text in _GROUPS:
        if target not in (None, name):
            sub = _placeholder(help_text)
        else:
            try:
                sub = _import(module, attr)  # type: ignore[assignment]
            except _MissingExtra as exc:
                sub = _missing(name, extra or "agent", exc.error)
        app.add_typer(sub, name=name, help=help_text)
    for name, module, attr, extra, help_text in _COMMANDS:
        if target not in (None, name):
            app.add_typer(_placeholder(help_text), name=name, help=help_text)
            continue
        try:
            func = _import(module, attr)
        except _MissingExtra as exc:
            app.add_typer(_missing(name, extra or "agent", exc.error), name=name, help=help_text)
            continue
        app.command(name=name, help=help_text)(cast(Callable[..., Any], func))


def _target(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option)."""
    names = {g[0] for g in _GROUPS} | {c[0] for c in _COMMANDS}
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in names else None
    return None


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"soc {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """SOC platform: agent, collector, detection, SOC API."""


def main() -> None:
    target = _target(sys.argv[1:])
    code = fast_hunt(sys.argv[1:]) if target == "hunt" else None
    if code is not None:
        sys.exit(code)
    _register(target or "")
    try:
        app(prog_name="soc")
    except Exception as exc:
        if not _is_config_error(exc):
            raise
        typer.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _is_config_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a :class:`~soc_common.config.ConfigError`, without importing the config
    module (pydantic, ~0.1 s) for commands that never load configuration, e.g. ``soc hunt``: if it
    was never imported, nothing can have raised its error."""
    config = sys.modules.get("soc_common.config")
    return config is not None and isinstance(exc, config.ConfigError)
