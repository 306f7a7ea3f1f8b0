"""The one pySigma processing pipeline that maps Sigma rules onto our ECS events.

It is a real :class:`~sigma.processing.pipeline.ProcessingPipeline` (field-name mappings plus
log-source conditions), so the same definition serves the in-process streaming engine here and
pySigma's Elasticsearch backend on the scheduled path: one rule source, two ways to run it.

What it does, in order:

1. ``expand`` placeholders (``%name%``) are replaced from the configured placeholder values;
   unresolved ones stay and the loader skips the rule with a reason.
2. Windows rules (``product: windows``): Sigma's Sysmon-style field ``X`` becomes
   ``winlog.event_data.X`` (our normaliser keeps every EventData field verbatim there), except dotted
   names, which are already ECS or ``soc.*`` enrichment fields, and the System fields
   (``EventID`` -> ``event.code``, ``Channel`` -> ``winlog.channel``, ...).
   ``process_creation`` maps ``Image``/``ParentImage`` to both the Sysmon name and the Security
   4688 name (``NewProcessName``/``ParentProcessName``), as Zircolite and Hayabusa do, so
   Sysmon-written rules also fire on 4688.
3. Log-source conditions: a Windows service adds ``winlog.channel``; a category adds the channel
   and the ``event.code`` values (Sysmon EIDs, 4688, PowerShell 4103/4104...); Linux services and
   our own ``product: soc`` categories add ``event.dataset``. Our own log sources use ECS dotted
   field names directly, so no field mapping applies to them.

Log sources that are not mapped get no condition: their field-bound rules are evaluated against
any event carrying those fields (as Chainsaw and Hayabusa do). Keyword-only searches need a mapped
log source (otherwise a word would match every event of every kind): the loader skips those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pySigma loads only when rules are built, not when cached rules run
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline

PIPELINE_VERSION = "soc-ecs-3"
LOGSOURCE_ITEM_PREFIX = "soc_logsource_"
EVENT_DATA_PREFIX = "winlog.event_data."

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
SECURITY_CHANNEL = "Security"

# Windows System-section fields as Sigma names them -> our ECS fields.
WINDOWS_SYSTEM_FIELDS: dict[str | None, str | list[str]] = {
    "EventID": "event.code",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Computer": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
}

# Sysmon-taxonomy process fields -> the same field plus its Security 4688 name.
PROCESS_CREATION_4688_FIELDS: dict[str | None, str | list[str]] = {
    "Image": ["Image", "NewProcessName"],
    "ParentImage": ["ParentImage", "ParentProcessName"],
}

# Generic Windows categories -> (channels, event codes).
_SYSMON_CATEGORIES: dict[str, list[int]] = {
    "file_change": [2],
    "network_connection": [3],
    "sysmon_status": [4, 16],
    "process_termination": [5],
    "driver_load": [6],
    "image_load": [7],
    "create_remote_thread": [8],
    "raw_access_thread": [9],
    "process_access": [10],
    "file_event": [11],
    "registry_add": [12],
    "registry_delete": [12],
    "registry_set": [13],
    "registry_rename": [14],
    "registry_event": [12, 13, 14],
    "create_stream_hash": [15],
    "pipe_created": [17, 18],
    "wmi_event": [19, 20, 21],
    "dns_query": [22],
    "file_delete": [23, 26],
    "file_delete_detected": [26],
    "clipboard_capture": [24],
    "process_tampering": [25],
    "file_block_executable": [27],
    "file_block_shredding": [28],
    "file_executable_detected": [29],
    "sysmon_error": [255],
}


def _channels(service: str) -> list[str]:
    from sigma.pipelines.common import windows_logsource_mapping

    value: Any = windows_logsource_mapping[service]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def windows_category_conditions() -> dict[str, dict[str, list[str]]]:
    """Category -> the ``winlog.channel`` / ``event.code`` values an event of it carries."""
    out: dict[str, dict[str, list[str]]] = {
        cat: {"winlog.channel": [SYSMON_CHANNEL], "event.code": [str(c) for c in codes]}
        for cat, codes in _SYSMON_CATEGORIES.items()
    }
    out["process_creation"] = {
        "winlog.channel": [SYSMON_CHANNEL, SECURITY_CHANNEL],
        "event.code": ["1", "4688"],
    }
    out["ps_module"] = {"winlog.channel": _channels("powershell"), "event.code": ["4103"]}
    out["ps_script"] = {"winlog.channel": _channels("powershell"), "event.code": ["4104"]}
    for cat, code in (
        ("ps_classic_start", "400"),
        ("ps_classic_provider_start", "600"),
        ("ps_classic_script", "800"),
    ):
        out[cat] = {"winlog.channel": _channels("powershell-classic"), "event.code": [code]}
    return out


# (product, service or None, category or None) -> event.dataset values, for non-Windows sources.
DATASET_LOGSOURCES: dict[tuple[str | None, str | None, str | None], list[str]] = {
    ("linux", "auth", None): ["system.auth"],
    ("linux", "sshd", None): ["system.auth"],
    ("linux", "sudo", None): ["system.auth"],
    ("linux", "su", None): ["system.auth"],
    ("linux", "syslog", None): ["system.syslog", "syslog", "journald"],
    ("linux", "cron", None): ["system.syslog", "syslog", "journald"],
    ("soc", None, "flow"): ["network_traffic.flow", "netflow.flow"],
    ("soc", None, "dns"): ["network_traffic.dns"],
    ("soc", None, "tls"): ["network_traffic.tls"],
    ("soc", None, "http"): ["network_traffic.http"],
    ("soc", None, "inventory"): ["soc.inventory"],
    ("soc", None, "agent"): ["soc.agent"],
    (None, None, "webserver"): ["nginx.access", "apache.access"],
}


def _logsource_items() -> list[ProcessingItem]:
    from sigma.pipelines.common import windows_logsource_mapping
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem
    from sigma.processing.transformations import AddConditionTransformation

    items: list[ProcessingItem] = []
    for service in windows_logsource_mapping:
        items.append(
            ProcessingItem(
                identifier=f"{LOGSOURCE_ITEM_PREFIX}windows_{service}",
                transformation=AddConditionTransformation({"winlog.channel": _channels(service)}),
                rule_conditions=[LogsourceCondition(product="windows", service=service)],
            )
        )
    items.append(  # product-only Windows rules (often keyword searches): any Windows event log record
        ProcessingItem(
            identifier=f"{LOGSOURCE_ITEM_PREFIX}windows_any",
            transformation=AddConditionTransformation({"winlog.channel": "*"}),
            rule_conditions=[LogsourceCondition(product="windows")],
        )
    )
    for category, conditions in windows_category_conditions().items():
        items.append(
            ProcessingItem(
                identifier=f"{LOGSOURCE_ITEM_PREFIX}windows_{category}",
                transformation=AddConditionTransformation(dict(conditions)),
                rule_conditions=[LogsourceCondition(product="windows", category=category)],
            )
        )
    for (product, svc, cat), datasets in DATASET_LOGSOURCES.items():
        items.append(
            ProcessingItem(
                identifier=f"{LOGSOURCE_ITEM_PREFIX}{product}_{svc or cat}",
                transformation=AddConditionTransformation({"event.dataset": list(datasets)}),
                rule_conditions=[LogsourceCondition(product=product, service=svc, category=cat)],
            )
        )
    return items


def build_pipeline(placeholders: Mapping[str, Sequence[str]] | None = None) -> ProcessingPipeline:
    """Build the ECS pipeline; ``placeholders`` resolves ``expand`` modifiers (``%name%``)."""
    from sigma.processing.conditions import ExcludeFieldCondition, LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        AddFieldnamePrefixTransformation,
        FieldMappingTransformation,
        ValueListPlaceholderTransformation,
    )

    items: list[ProcessingItem] = []
    if placeholders:
        items.append(
            ProcessingItem(
                identifier="soc_placeholders",
                transformation=ValueListPlaceholderTransformation(include=list(placeholders)),
            )
        )
    items += [
        ProcessingItem(
            identifier="soc_process_creation_4688",
            transformation=FieldMappingTransformation(PROCESS_CREATION_4688_FIELDS),
            rule_conditions=[LogsourceCondition(product="windows", category="process_creation")],
        ),
        ProcessingItem(
            identifier="soc_windows_system_fields",
            transformation=FieldMappingTransformation(WINDOWS_SYSTEM_FIELDS),
            rule_conditions=[LogsourceCondition(product="windows")],
        ),
        ProcessingItem(
            identifier="soc_windows_event_data",
            transformation=AddFieldnamePrefixTransformation(EVENT_DATA_PREFIX),
            rule_conditions=[LogsourceCondition(product="windows")],
            # a dotted name is already an ECS/soc field (event.code, soc.source_zone), never an EventData name
            field_name_conditions=[ExcludeFieldCondition(fields=[r".*\."], mode="re")],
        ),
    ]
    items += _logsource_items()
    return ProcessingPipeline(
        name="SOC ECS mapping",
        priority=20,
        items=items,
        vars={k: list(v) for k, v in (placeholders or {}).items()},
    )


def is_logsource_mapped(applied_ids: set[str]) -> bool:
    """Whether a log-source condition was added to the rule (by the ids the pipeline applied)."""
    return any(i.startswith(LOGSOURCE_ITEM_PREFIX) for i in applied_ids)
