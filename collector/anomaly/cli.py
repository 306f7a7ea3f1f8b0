"""``soc collector anomaly ...``: run the scheduler, run one cycle, show status, explain an alert."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import typer

from collector.anomaly.service import AnomalyService, settings_of, state_path_of
from collector.anomaly.state import AnomalyState
from soc_common.config import ConfigError, load_config
from soc_common.ecs import parse_ts

app = typer.Typer(help="Anomaly detection: baselines that catch what no rule names.", no_args_is_help=True)
ConfigOpt = typer.Option(None, "--config", "-c", help="collector.toml")


def _config(path: Path | None) -> Any:
    from collector.config import CollectorConfig

    try:
        return load_config(CollectorConfig, path, role="collector")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _service(path: Path | None) -> tuple[AnomalyService, Any]:
    from collector.runtime import open_alert_sink, open_event_store

    config = _config(path)
    store = open_event_store(config)
    return AnomalyService(config, store, open_alert_sink(config)), store


@app.command()
def run(config: Path | None = ConfigOpt) -> None:
    """Run detection cycles on the configured interval until interrupted."""
    service, store = _service(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    stop.wait()
    service.stop()
    store.close()


@app.command()
def once(
    config: Path | None = ConfigOpt,
    now: str | None = typer.Option(None, help="judge as if it were this UTC time (replays)"),
) -> None:
    """Run one cycle now and print what it found."""
    service, store = _service(config)
    try:
        report = service.run_once(parse_ts(now) if now else None)
    finally:
        service.stop()
        store.close()
    for alert in report.alerts:
        typer.echo(f"{alert.id}  {alert.severity:8} {alert.rule_id:40} {alert.rule_title}")
    typer.echo(json.dumps({"alerts": len(report.alerts), "windows": report.windows, "errors": report.errors}))
    if report.errors:
        raise typer.Exit(1)


def _state(path: Path | None) -> AnomalyState:
    config = _config(path)
    return AnomalyState(state_path_of(config, settings_of(config)))


@app.command()
def status(config: Path | None = ConfigOpt) -> None:
    """Checkpoints, last runs, alert counts and overrides per detector."""
    state = _state(config)
    try:
        out = {
            "checkpoints": {d: t.isoformat() for d, t in state.checkpoints().items()},
            "last_runs": state.last_runs(),
            "reported": state.reported_counts(),
            "overrides": state.overrides(),
            "override_audit": state.override_audit(20),
        }
    finally:
        state.close()
    typer.echo(json.dumps(out, indent=2, ensure_ascii=False, default=str))


@app.command()
def explain(alert_id: str, config: Path | None = ConfigOpt) -> None:
    """Why an anomaly alert fired: baseline, observed value, score, window."""
    state = _state(config)
    try:
        alert = state.reported(alert_id)
    finally:
        state.close()
    if alert is None:
        typer.echo(f"no anomaly alert {alert_id}", err=True)
        raise typer.Exit(1)
    typer.echo(
        json.dumps(
            {k: alert[k] for k in ("id", "rule_id", "rule_title", "timestamp", "explanation")},
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
