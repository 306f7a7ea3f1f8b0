"""ECS mappings for the Windows events that detections and dashboards look at.

``winlog.event_data`` always carries every field verbatim (that is what Sigma's Windows field names
address); these functions add the ECS view on top (``process.*``, ``user.*``, ``source.ip``, ...)
for the events where the meaning is well known. Each mapper reads ``data`` (the event fields) and
writes into ``event``; the table at the bottom picks the mapper by dataset and event id.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from agent.windows.record import to_int

Mapper = Callable[[dict[str, Any], Mapping[str, Any]], None]

_NONE_VALUES = frozenset({"", "-", "N/A", "n/a", "NULL SID", "S-1-0-0"})

_LOGON_TYPES = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}

_HASH_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}


def value(data: Mapping[str, Any], key: str) -> str | None:
    """A field's text, or ``None`` for absent and the placeholders Windows writes for "nothing"."""
    raw = data.get(key)
    if not isinstance(raw, str):
        return None
    return None if raw in _NONE_VALUES else raw


def _section(event: dict[str, Any], *path: str) -> dict[str, Any]:
    node = event
    for part in path:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    return node


def _related(event: dict[str, Any], kind: str, item: str | None) -> None:
    if not item:
        return
    values = _section(event, "related").setdefault(kind, [])
    if item not in values:
        values.append(item)


def basename(path: str) -> str:
    return path.rsplit("\\", 1)[-1].rsplit("/", 1)[-1]


def _valid_ip(text: str | None) -> str | None:
    if not text:
        return None
    candidate = text.strip().strip("[]")
    if candidate.startswith("::ffff:") and "." in candidate:
        candidate = candidate[7:]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _categorise(event: dict[str, Any], category: str, types: list[str], action: str | None = None) -> None:
    ev = event["event"]
    ev["category"] = [category]
    ev["type"] = types
    if action:
        ev["action"] = action


def _set_user(event: dict[str, Any], name: str | None, domain: str | None, sid: str | None) -> None:
    if not (name or sid):
        return
    user = _section(event, "user")
    if name:
        user["name"] = name
        _related(event, "user", name)
    if domain:
        user["domain"] = domain
    if sid:
        user["id"] = sid


def _set_qualified_user(event: dict[str, Any], qualified: str | None) -> None:
    """``DOMAIN\\name`` (Sysmon, Defender) -> ``user.domain`` + ``user.name``."""
    if not qualified:
        return
    domain, sep, name = qualified.partition("\\")
    if sep:
        _set_user(event, name, domain, None)
    else:
        _set_user(event, qualified, None, None)


def _set_endpoint(event: dict[str, Any], side: str, ip: str | None, port: str | None) -> None:
    address = _valid_ip(ip)
    number = to_int(port) if port else None
    if address is None and not number:
        return
    node = _section(event, side)
    if address is not None:
        node["ip"] = address
        _related(event, "ip", address)
    if number:
        node["port"] = number


def _set_process(event: dict[str, Any], node: dict[str, Any], image: str | None, pid: Any) -> None:
    if image:
        node["executable"] = image
        node["name"] = basename(image)
    number = to_int(pid)
    if number is not None:
        node["pid"] = number


def _set_hashes(event: dict[str, Any], node: dict[str, Any], hashes: str | None) -> None:
    """Sysmon's ``SHA1=...,MD5=...,IMPHASH=...`` -> ``<node>.hash.*`` and ``<node>.pe.imphash``."""
    if not hashes:
        return
    for part in hashes.split(","):
        algo, sep, digest = part.partition("=")
        if not sep or not digest:
            continue
        algo = algo.strip().upper()
        digest = digest.strip().lower()
        if algo == "IMPHASH":
            _section(node, "pe")["imphash"] = digest
        elif algo in _HASH_NAMES:
            _section(node, "hash")[_HASH_NAMES[algo]] = digest
            _related(event, "hash", digest)


# --- Sysmon -------------------------------------------------------------------------------------


def sysmon_common(event: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """Fields most Sysmon events share: the acting process and its user."""
    process = _section(event, "process")
    _set_process(event, process, value(data, "Image"), data.get("ProcessId"))
    guid = value(data, "ProcessGuid")
    if guid:
        process["entity_id"] = guid
    _set_qualified_user(event, value(data, "User"))
    if not process:
        del event["process"]
    return process


def sysmon_default(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Sysmon events without a mapper of their own still get the acting process and user."""
    sysmon_common(event, data)


def sysmon_process_create(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    process = sysmon_common(event, data)
    if value(data, "CommandLine"):
        process["command_line"] = data["CommandLine"]
    if value(data, "CurrentDirectory"):
        process["working_directory"] = data["CurrentDirectory"]
    if value(data, "OriginalFileName"):
        _section(process, "pe")["original_file_name"] = data["OriginalFileName"]
    _set_hashes(event, process, value(data, "Hashes"))
    parent: dict[str, Any] = {}
    _set_process(event, parent, value(data, "ParentImage"), data.get("ParentProcessId"))
    if value(data, "ParentProcessGuid"):
        parent["entity_id"] = data["ParentProcessGuid"]
    if value(data, "ParentCommandLine"):
        parent["command_line"] = data["ParentCommandLine"]
    if parent:
        process["parent"] = parent
    _categorise(event, "process", ["start"], "process-created")


def sysmon_process_terminated(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    _categorise(event, "process", ["end"], "process-terminated")


def sysmon_network(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    _set_endpoint(event, "source", value(data, "SourceIp"), value(data, "SourcePort"))
    _set_endpoint(event, "destination", value(data, "DestinationIp"), value(data, "DestinationPort"))
    if value(data, "DestinationHostname"):
        _section(event, "destination")["domain"] = data["DestinationHostname"]
    network = _section(event, "network")
    protocol = value(data, "Protocol")
    if protocol:
        network["transport"] = protocol.lower()
    initiated = value(data, "Initiated")
    if initiated:
        network["direction"] = "egress" if initiated.lower() == "true" else "ingress"
    _categorise(event, "network", ["connection", "start"], "network-connection")


def sysmon_image_load(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    loaded = value(data, "ImageLoaded")
    if loaded:
        dll = _section(event, "dll")
        dll["path"] = loaded
        dll["name"] = basename(loaded)
        _set_hashes(event, dll, value(data, "Hashes"))
    _categorise(event, "library", ["start"], "image-loaded")


def sysmon_process_access(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    process = _section(event, "process")
    _set_process(event, process, value(data, "SourceImage"), data.get("SourceProcessId"))
    if value(data, "SourceProcessGUID"):
        process["entity_id"] = data["SourceProcessGUID"]
    target = _section(event, "winlog", "target_process")
    _set_process(event, target, value(data, "TargetImage"), data.get("TargetProcessId"))
    _categorise(event, "process", ["access"], "process-accessed")


def sysmon_file(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    path = value(data, "TargetFilename")
    if path:
        file = _section(event, "file")
        file["path"] = path
        file["name"] = basename(path)
    code = event["event"]["code"]
    deleted = code in ("23", "26")
    if deleted:
        _categorise(event, "file", ["deletion"], "file-deleted")
    else:
        _categorise(event, "file", ["creation"], "file-created")


def sysmon_registry(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    path = value(data, "TargetObject")
    if path:
        registry = _section(event, "registry")
        registry["path"] = path
        hive, _, key = path.partition("\\")
        registry["hive"] = hive
        registry["key"] = key
        if value(data, "Details"):
            _section(registry, "data")["strings"] = [data["Details"]]
    _categorise(event, "registry", ["change"], "registry-changed")


def sysmon_dns(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    sysmon_common(event, data)
    name = value(data, "QueryName")
    if name:
        _section(event, "dns", "question")["name"] = name
    _categorise(event, "network", ["protocol", "info"], "dns-query")


# --- Security -----------------------------------------------------------------------------------


def _subject_user(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    _set_user(event, value(data, "SubjectUserName"), value(data, "SubjectDomainName"), value(data, "SubjectUserSid"))


def security_process_create(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    process = _section(event, "process")
    _set_process(event, process, value(data, "NewProcessName"), data.get("NewProcessId"))
    if value(data, "CommandLine"):
        process["command_line"] = data["CommandLine"]
    parent: dict[str, Any] = {}
    _set_process(event, parent, value(data, "ParentProcessName"), data.get("ProcessId"))
    if parent:
        process["parent"] = parent
    _subject_user(event, data)
    _categorise(event, "process", ["start"], "process-created")


_LOGON_ACTIONS: dict[str, tuple[list[str], str, str | None]] = {
    "4624": (["start"], "logged-in", "success"),
    "4625": (["start"], "logon-failed", "failure"),
    "4634": (["end"], "logged-out", "success"),
    "4647": (["end"], "logged-out", "success"),
    "4648": (["start"], "logged-in-explicit", "success"),
    "4672": (["start"], "logged-in-special", "success"),
    "4768": (["start"], "kerberos-authentication-ticket-requested", None),
    "4769": (["start"], "kerberos-service-ticket-requested", None),
    "4771": (["start"], "kerberos-preauth-failed", "failure"),
    "4776": (["start"], "credential-validated", None),
}


def security_logon(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    code = event["event"]["code"]
    types, action, outcome = _LOGON_ACTIONS[code]
    name = value(data, "TargetUserName")
    if name:
        _set_user(event, name, value(data, "TargetDomainName"), value(data, "TargetUserSid"))
    else:  # 4672 names the subject only
        _subject_user(event, data)
    _related(event, "user", value(data, "SubjectUserName"))
    _set_endpoint(event, "source", value(data, "IpAddress"), value(data, "IpPort"))
    workstation = value(data, "WorkstationName") or value(data, "Workstation")
    if workstation:
        _section(event, "source")["domain"] = workstation
    logon_type = value(data, "LogonType")
    logon: dict[str, Any] = {}
    if logon_type:
        logon["type"] = _LOGON_TYPES.get(logon_type, logon_type)
    logon_id = value(data, "TargetLogonId") or value(data, "SubjectLogonId")
    if logon_id:
        logon["id"] = logon_id
    if code == "4625":
        failure = {
            key: text
            for key, field in (("status", "Status"), ("sub_status", "SubStatus"))
            if (text := value(data, field))
        }
        if value(data, "FailureReason"):
            failure["reason"] = data["FailureReason"]
        if failure:
            logon["failure"] = failure
    if logon:
        _section(event, "winlog")["logon"] = logon
    if outcome is None:  # Kerberos / NTLM validation: Status 0x0 is success
        status = value(data, "Status")
        outcome = "success" if status is None or to_int(status) == 0 else "failure"
    _categorise(event, "authentication", types, action)
    event["event"]["outcome"] = outcome


_IAM_ACTIONS: dict[str, tuple[str, list[str], bool]] = {
    # code: (action, types, is_group_membership)
    "4720": ("added-user-account", ["user", "creation"], False),
    "4722": ("enabled-user-account", ["user", "change"], False),
    "4723": ("changed-password", ["user", "change"], False),
    "4724": ("reset-password", ["user", "change"], False),
    "4725": ("disabled-user-account", ["user", "change"], False),
    "4726": ("deleted-user-account", ["user", "deletion"], False),
    "4738": ("modified-user-account", ["user", "change"], False),
    "4740": ("locked-out-user-account", ["user", "change"], False),
    "4728": ("added-member-to-group", ["group", "change"], True),
    "4729": ("removed-member-from-group", ["group", "change"], True),
    "4732": ("added-member-to-group", ["group", "change"], True),
    "4733": ("removed-member-from-group", ["group", "change"], True),
    "4756": ("added-member-to-group", ["group", "change"], True),
    "4757": ("removed-member-from-group", ["group", "change"], True),
}


def _member_name(member: str | None) -> str | None:
    """``CN=bob,CN=Users,DC=corp,DC=local`` -> ``bob``; other spellings unchanged."""
    if member and member[:3].upper() == "CN=":
        return member[3:].split(",", 1)[0]
    return member


def security_iam(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    action, types, membership = _IAM_ACTIONS[event["event"]["code"]]
    _subject_user(event, data)
    target = _section(event, "user", "target")
    if membership:
        group = _section(event, "group")
        for key, field in (("name", "TargetUserName"), ("domain", "TargetDomainName"), ("id", "TargetSid")):
            if value(data, field):
                group[key] = data[field]
        member = _member_name(value(data, "MemberName"))
        if member:
            target["name"] = member
        if value(data, "MemberSid"):
            target["id"] = data["MemberSid"]
    else:
        for key, field in (("name", "TargetUserName"), ("domain", "TargetDomainName"), ("id", "TargetSid")):
            if value(data, field):
                target[key] = data[field]
    if not target:
        del event["user"]["target"]
    _related(event, "user", target.get("name"))
    _categorise(event, "iam", types, action)
    event["event"]["outcome"] = "success"


def log_cleared(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    _subject_user(event, data)
    _categorise(event, "iam", ["admin", "change"], "audit-log-cleared")


def service_installed(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    """System 7045 and Security 4697: a new service is persistence and lateral movement's favourite."""
    service = _section(event, "service")
    if value(data, "ServiceName"):
        service["name"] = data["ServiceName"]
    if value(data, "ServiceType"):
        service["type"] = data["ServiceType"]
    binary = value(data, "ImagePath") or value(data, "ServiceFileName")
    if binary:
        _section(event, "file")["path"] = binary
    if value(data, "AccountName") or value(data, "ServiceAccount"):
        _related(event, "user", value(data, "AccountName") or value(data, "ServiceAccount"))
    _subject_user(event, data)
    _categorise(event, "configuration", ["creation"], "service-installed")


# --- Defender and PowerShell --------------------------------------------------------------------


def defender_detection(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    """1116 detected / 1117 action taken: the endpoint protection's own alert."""
    event["event"]["kind"] = "alert"
    rule = {
        key: text
        for key, field in (("name", "Threat Name"), ("id", "Threat ID"), ("category", "Category Name"))
        if (text := value(data, field))
    }
    if rule:
        event["rule"] = rule
    if "name" in rule:
        event["threat"] = {"software": {"name": rule["name"]}}
    severity = value(data, "Severity Name")
    if severity:
        _section(event, "winlog", "defender")["severity"] = severity
    path = value(data, "Path")
    if path:
        # "file:_C:\\x.exe;containerfile:_..." -> the first resource's path
        first = path.split(";", 1)[0]
        _section(event, "file")["path"] = first.split(":_", 1)[1] if ":_" in first else first
    process = value(data, "Process Name")
    if process and process != "Unknown":
        _section(event, "process").update({"executable": process, "name": basename(process)})
    _set_qualified_user(event, value(data, "Detection User"))
    code = event["event"]["code"]
    _categorise(event, "malware", ["info"], "malware-detected" if code == "1116" else "malware-action-taken")
    action = value(data, "Action Name")
    event["event"]["outcome"] = "success" if code == "1117" and action else "unknown"


def powershell_script_block(event: dict[str, Any], data: Mapping[str, Any]) -> None:
    script: dict[str, Any] = {}
    if value(data, "ScriptBlockText"):
        script["script_block_text"] = data["ScriptBlockText"]
    if value(data, "ScriptBlockId"):
        script["script_block_id"] = data["ScriptBlockId"]
    if script:
        _section(event, "powershell")["file"] = script
    if value(data, "Path"):
        _section(event, "file")["path"] = data["Path"]
    _categorise(event, "process", ["info"], "execute-script-block")


MAPPERS: dict[tuple[str, str], Mapper] = {
    ("windows.sysmon", "1"): sysmon_process_create,
    ("windows.sysmon", "3"): sysmon_network,
    ("windows.sysmon", "5"): sysmon_process_terminated,
    ("windows.sysmon", "7"): sysmon_image_load,
    ("windows.sysmon", "10"): sysmon_process_access,
    ("windows.sysmon", "11"): sysmon_file,
    ("windows.sysmon", "12"): sysmon_registry,
    ("windows.sysmon", "13"): sysmon_registry,
    ("windows.sysmon", "14"): sysmon_registry,
    ("windows.sysmon", "22"): sysmon_dns,
    ("windows.sysmon", "23"): sysmon_file,
    ("windows.sysmon", "26"): sysmon_file,
    ("windows.security", "4688"): security_process_create,
    ("windows.security", "4697"): service_installed,
    ("windows.security", "1102"): log_cleared,
    ("windows.system", "104"): log_cleared,
    ("windows.system", "7045"): service_installed,
    ("windows.defender", "1116"): defender_detection,
    ("windows.defender", "1117"): defender_detection,
    ("windows.powershell", "4104"): powershell_script_block,
    **{("windows.security", code): security_logon for code in _LOGON_ACTIONS},
    **{("windows.security", code): security_iam for code in _IAM_ACTIONS},
}

# Events whose meaning depends on the provider, not just the number.
PROVIDER_REQUIRED: dict[tuple[str, str], str] = {
    ("windows.security", "1102"): "microsoft-windows-eventlog",
    ("windows.system", "104"): "microsoft-windows-eventlog",
    ("windows.system", "7045"): "service control manager",
}
