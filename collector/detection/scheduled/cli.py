"""``soc collector scheduled``: Sigma rules run on a schedule over the Elasticsearch store.

The store, the alert sink and (by default) the rule paths come from the collector configuration;
scheduling settings from its ``[scheduled]`` section (``SOC_COLLECTOR_SCHEDULED__*`` variables).
Exit codes: 0 ok, 1 a rule failed or nothing to do, 2 bad usage or configuration.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import typer

from collector.config import CollectorConfig
from collector.detection.scheduled.convert import CompiledRules, compile_rules
from collector.detection.scheduled.runner import ScheduledDetector
from collector.detection.scheduled.settings import ScheduledSettings
from collector.detection.scheduled.state import StateStore
from soc_common.config import ConfigError, load_config

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ConfigOption = typer.Option(None, "--config", "-c", help="collector.toml", envvar="SOC_COLLECTOR_CONFIG")


def _load(config: Path | None) -> tuple[CollectorConfig, ScheduledSettings]:
    """The collector's configuration and its ``[scheduled]`` section."""
    try:
        cfg = load_config(CollectorConfig, config, role="collector")
        return cfg, cfg.scheduled
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def state_path(cfg: CollectorConfig, settings: ScheduledSettings) -> Path:
    return settings.state_path or cfg.state_dir / "scheduled.db"


def _rules(cfg: CollectorConfig, settings: ScheduledSettings, paths: list[Path] | None = None) -> CompiledRules:
    rule_paths = paths or settings.rule_paths or cfg.detection.rule_paths
    statuses = settings.statuses if settings.statuses is not None else cfg.detection.statuses
    levels = settings.levels if settings.levels is not None else cfg.detection.levels
    return compile_rules(rule_paths, statuses=statuses or None, levels=levels or None)


def _detector(cfg: CollectorConfig, settings: ScheduledSettings) -> ScheduledDetector:
    if cfg.store.kind != "elasticsearch":
        typer.echo('scheduled detection needs store.kind = "elasticsearch"', err=True)
        raise typer.Exit(EXIT_USAGE)
    from collector.runtime import open_alert_sink
    from collector.store.elastic import ElasticEventStore

    rules = _rules(cfg, settings)
    for skipped in rules.skipped:
        logging.getLogger(__name__).info("rule skipped: %s (%s): %s", skipped.title, skipped.path, skipped.reason)
    store = ElasticEventStore(cfg.store)
    return ScheduledDetector(store, rules, StateStore(state_path(cfg, settings)), open_alert_sink(cfg), settings)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command("run")
def run(
    config: Path | None = ConfigOption,
    log_level: str = typer.Option("INFO", "--log-level"),
) -> None:
    """Run every rule at its interval until SIGTERM/SIGINT."""
    _logging(log_level)
    cfg, sched = _load(config)
    from collector.detection.scheduled.service import ScheduledService

    service = ScheduledService(_detector(cfg, sched))

    def _stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.start()
    while not service.wait(1.0):
        pass


@app.command("once")
def once(
    rule: list[str] = typer.Option([], "--rule", help="rule id (repeatable); default: every due rule"),
    config: Path | None = ConfigOption,
    log_level: str = typer.Option("WARNING", "--log-level"),
) -> None:
    """One pass over every due rule (or the named ones), then exit: for cron."""
    _logging(log_level)
    cfg, sched = _load(config)
    detector = _detector(cfg, sched)
    reports = detector.run_once(rule_ids=rule or None)
    for report in reports:
        typer.echo(json.dumps(report.as_dict()))
    raise typer.Exit(EXIT_PROBLEM if any(not r.ok for r in reports) else EXIT_OK)


@app.command("status")
def status(
    config: Path | None = ConfigOption,
    errors: bool = typer.Option(False, "--errors", help="only the last failed runs"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Checkpoints and the last run of every rule."""
    cfg, sched = _load(config)
    path = state_path(cfg, sched)
    if not path.exists():
        typer.echo(f"no scheduled-detection state at {path}", err=True)
        raise typer.Exit(EXIT_PROBLEM)
    state = StateStore(path)
    checkpoints = state.checkpoints()
    last = state.runs(errors_only=True, limit=50) if errors else list(state.last_runs().values())
    if as_json:
        payload = {
            "checkpoints": {k: v.isoformat() for k, v in checkpoints.items()},
            "runs": [r.as_dict() for r in last],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    for report in sorted(last, key=lambda r: r.rule_title):
        cp = checkpoints.get(report.rule_id)
        outcome = "ok" if report.ok else f"ERROR {report.error}"
        typer.echo(
            f"{report.rule_title[:60]:60} checkpoint={cp.isoformat() if cp else '-':32} hits={report.hits:<6}"
            f" alerts={report.alerts:<5} overflow={report.overflow:<5} {report.duration_ms:8.1f} ms  {outcome}"
        )


@app.command("convert")
def convert(
    rules: list[Path] = typer.Option(..., "--rules", help="rule file or directory (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="Elasticsearch query DSL instead of Lucene text"),
) -> None:
    """Print each rule's Elasticsearch query (Lucene, for Kibana) and the rules that cannot convert."""
    compiled = compile_rules(rules)
    for query in compiled.queries:
        if as_json:
            typer.echo(json.dumps({"id": query.meta.id, "title": query.meta.title, "query": query.dsl()}))
        else:
            typer.echo(f"# {query.meta.title} ({query.meta.id})\n{query.lucene}\n")
    for corr in compiled.correlations:
        spec = corr.spec
        bases = ", ".join(b.meta.title for b in corr.bases)
        typer.echo(
            f"# correlation {spec.meta.title} ({spec.meta.id}): {spec.kind} {spec.op} {spec.threshold}"
            f" over {spec.timespan_seconds:g}s by {', '.join(spec.group_by)}; rules {bases}\n"
        )
    for skipped in compiled.skipped:
        typer.echo(f"# skipped {skipped.title} ({skipped.path}): {skipped.reason}", err=True)
