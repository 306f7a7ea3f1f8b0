"""The agent's configuration (``/etc/soc/agent.toml``).

Source entries are free-form tables in TOML (``[[sources]] type = "files"``); each is validated
against its own plug-in's settings model through the registry, which imports the plug-in lazily, so
a broken or missing plug-in only fails the configurations that use it. Errors name the entry as the
operator wrote it: ``sources[2].paths``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from soc_common.config import ConfigError, Section, data_dir_default, load_config

DEFAULT_CONFIG_PATH = Path("/etc/soc/agent.toml")
MiB = 1024 * 1024
GiB = 1024 * MiB
# The protocol's limit on one request's uncompressed body (docs/agent-protocol.md).
PROTOCOL_MAX_BODY = 50 * MiB


class HostLabels(Section):
    """Organisation labels copied into ``soc.*`` on every event this host sends."""

    site: str | None = None
    zone: str | None = None
    system_id: str | None = None


class ShippingSettings(Section):
    batch_max_events: int = Field(default=2000, gt=0)
    batch_max_bytes: int = Field(default=4 * MiB, gt=0, le=PROTOCOL_MAX_BODY)
    flush_interval: float = Field(default=1.0, gt=0)  # seconds a partial batch may wait for more events
    gzip: bool = True
    eps_cap: float = Field(default=0.0, ge=0)  # events/s; 0 = unlimited
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=30.0, gt=0)


class SpoolSettings(Section):
    max_bytes: int = Field(default=1 * GiB, gt=0)
    segment_bytes: int = Field(default=16 * MiB, gt=0)
    # block: sources pause (nothing is lost); drop_oldest / drop_newest: keep running, lose data loudly.
    on_full: Literal["block", "drop_oldest", "drop_newest"] = "block"
    block_timeout: float = Field(default=5.0, gt=0)  # how long one append waits before the source retries


class PolicySettings(Section):
    poll_interval: float = Field(default=60.0, gt=0)
    # True: keys set in the local file win over the central policy; False: central policy wins.
    allow_local_override: bool = False


class SourceEntry(Section):
    """One ``[[sources]]`` table; the plug-in-specific keys are checked by the plug-in's own model."""

    model_config = ConfigDict(extra="allow")

    type: str
    name: str = ""

    def options(self) -> dict[str, Any]:
        """The plug-in-specific keys (everything but ``type`` and ``name``)."""
        return dict(self.model_extra or {})


def _default_sources() -> list[SourceEntry]:
    return [SourceEntry(type="inventory", name="inventory")]


class AgentConfig(Section):
    collector_url: str = ""
    data_dir: Path = Field(default_factory=lambda: data_dir_default() / "agent")
    host: HostLabels = Field(default_factory=lambda: HostLabels())
    shipping: ShippingSettings = Field(default_factory=lambda: ShippingSettings())
    spool: SpoolSettings = Field(default_factory=lambda: SpoolSettings())
    policy: PolicySettings = Field(default_factory=lambda: PolicySettings())
    sources: list[SourceEntry] = Field(default_factory=_default_sources)
    status_interval: float = Field(default=5.0, gt=0)

    @field_validator("collector_url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (the agent never ships in clear text)")
        return value

    @field_validator("sources")
    @classmethod
    def _names_unique(cls, sources: list[SourceEntry]) -> list[SourceEntry]:
        seen: set[str] = set()
        for index, entry in enumerate(sources):
            if not entry.name:
                entry.name = entry.type if entry.type not in seen else f"{entry.type}-{index}"
            if entry.name in seen:
                raise ValueError(f"source name {entry.name!r} is used twice")
            seen.add(entry.name)
        return sources


def default_config_path() -> Path | None:
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def describe_source_error(index: int, err: ValidationError) -> str:
    """``sources[2].paths: Field required`` — the first problem, named as the operator wrote it."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    key = f"sources[{index}]" + (f".{loc}" if loc else "")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"key '{key}': {first['msg']}{more}"


def validate_sources(config: AgentConfig, origin: str = "configuration", plugins: Any = None) -> None:
    """Check every source entry against its plug-in's settings model; raise ConfigError naming the key.

    ``plugins`` is a :class:`agent.plugins.PluginRegistry` (default: the built-in one).
    """
    from agent.plugins import PluginError, registry

    plugins = plugins or registry
    for index, entry in enumerate(config.sources):
        try:
            plugins.validate(entry.type, entry.options())
        except PluginError as exc:
            raise ConfigError(f"{origin}: key 'sources[{index}].type': {exc}") from None
        except ValidationError as exc:
            raise ConfigError(f"{origin}: {describe_source_error(index, exc)}") from None


def load_agent_config(path: Path | str | None = None) -> AgentConfig:
    """Load ``path`` (or the default file when present) and validate the source entries."""
    if path is None:
        path = default_config_path()
    config = load_config(AgentConfig, path, role="agent")
    validate_sources(config, str(path) if path else "defaults")
    return config
