"""The source plug-in registry: ``type`` name -> source class and settings model, imported lazily.

Lazy imports keep the agent's start-up small and make plug-ins independent: a Windows-only module,
or one whose optional dependency is missing, only fails the configurations that name it.

Plug-in convention: the source class takes ``(name, settings, **context)`` where ``settings`` is an
instance of its settings model (a pydantic model, found as the class attribute ``settings_model`` or
by the module-level name given here; a plug-in without one takes ``(name, **context)``), and context
keywords it declares (``data_dir``, ``state_dir``, ``host_id``) are filled in by the runtime.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agent.sources.base import Source


class PluginError(Exception):
    """A source type that is unknown or cannot be loaded on this host."""


@dataclass(frozen=True)
class PluginSpec:
    type: str
    module: str
    source_class: str
    settings_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedPlugin:
    spec: PluginSpec
    source_class: type[Source]
    settings_model: type[BaseModel] | None


BUILTIN_PLUGINS: tuple[PluginSpec, ...] = (
    PluginSpec("files", "agent.sources.files", "FileSource", ("FileSourceSettings",)),
    PluginSpec("journald", "agent.sources.journald", "JournaldSource", ("JournaldSourceSettings", "JournaldSettings")),
    PluginSpec(
        "windows_eventlog",
        "agent.windows.eventlog",
        "WindowsEventLogSource",
        ("WindowsEventLogSettings", "WindowsEventLogSourceSettings"),
    ),
    PluginSpec("inventory", "agent.sources.inventory", "InventorySource", ("InventorySettings",)),
    PluginSpec("flows", "agent.flows.source", "FlowSource", ("FlowSourceSettings",)),
)


class PluginRegistry:
    def __init__(self, specs: tuple[PluginSpec, ...] = BUILTIN_PLUGINS) -> None:
        self._specs = {spec.type: spec for spec in specs}
        self._loaded: dict[str, LoadedPlugin] = {}
        self._lock = threading.Lock()

    @property
    def types(self) -> list[str]:
        return sorted(self._specs)

    def register(self, spec: PluginSpec) -> None:
        """Add (or replace) a plug-in; used by tests and third-party sources."""
        with self._lock:
            self._specs[spec.type] = spec
            self._loaded.pop(spec.type, None)

    def load(self, type_name: str) -> LoadedPlugin:
        with self._lock:
            if type_name in self._loaded:
                return self._loaded[type_name]
            spec = self._specs.get(type_name)
            if spec is None:
                raise PluginError(f"unknown source type {type_name!r} (known: {', '.join(self.types)})")
            try:
                module = importlib.import_module(spec.module)
                cls = getattr(module, spec.source_class)
            except (ImportError, AttributeError, SyntaxError) as exc:
                raise PluginError(f"source type {type_name!r} is not available on this host: {exc}") from None
            model = getattr(cls, "settings_model", None)
            if model is None:
                model = next((getattr(module, n) for n in spec.settings_names if hasattr(module, n)), None)
            loaded = LoadedPlugin(spec, cls, model if isinstance(model, type) else None)
            self._loaded[type_name] = loaded
            return loaded

    def validate(self, type_name: str, options: dict[str, Any]) -> BaseModel | None:
        """Validate a source entry's options; raises PluginError or pydantic's ValidationError."""
        plugin = self.load(type_name)
        if plugin.settings_model is None:
            if options:
                raise PluginError(f"source type {type_name!r} takes no settings (got {', '.join(options)})")
            return None
        return plugin.settings_model.model_validate(options)

    def create(
        self, type_name: str, name: str, options: dict[str, Any], context: Mapping[str, Any] | None = None
    ) -> Source:
        """Build a source. ``context`` offers keyword arguments (``data_dir``, ``state_dir``,
        ``host_id``); each is passed only if the plug-in's constructor takes it."""
        plugin = self.load(type_name)
        settings = self.validate(type_name, options)
        params = inspect.signature(plugin.source_class).parameters
        extra = {k: v for k, v in (context or {}).items() if k in params}
        if settings is None:
            return plugin.source_class(name, **extra)
        return plugin.source_class(name, settings, **extra)  # type: ignore[call-arg]


registry = PluginRegistry()
