"""``related.*``: every IP, user, host name and hash an event mentions, in one place to pivot on."""

from __future__ import annotations

from typing import Any

from collector.pipeline.base import Processor
from collector.pipeline.fields import dig, path, strings
from soc_common.ecs import Event

IP_FIELDS = tuple(
    path(p) for p in ("source.ip", "destination.ip", "host.ip", "client.ip", "server.ip", "dns.resolved_ip")
)
USER_FIELDS = tuple(
    path(p)
    for p in (
        "user.name",
        "user.target.name",
        "user.effective.name",
        "source.user.name",
        "destination.user.name",
    )
)
HOST_FIELDS = tuple(
    path(p)
    for p in (
        "host.name",
        "host.hostname",
        "source.domain",
        "destination.domain",
        "dns.question.name",
        "url.domain",
        "tls.client.server_name",
    )
)
HASH_OWNERS = tuple(path(p) for p in ("process.hash", "process.parent.hash", "file.hash", "dll.hash"))
HASH_KINDS = ("md5", "sha1", "sha256", "sha512", "imphash")
SYSMON_HASHES = path("winlog.event_data.Hashes")  # "SHA1=..,MD5=..,SHA256=..,IMPHASH=.."


def _add(found: dict[str, list[str]], kind: str, value: str) -> None:
    values = found.setdefault(kind, [])
    if value and value not in values:
        values.append(value)


class Related(Processor):
    name = "related"

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            existing = event.get("related")
            found: dict[str, list[str]] = {}
            if type(existing) is dict:
                for kind, values in existing.items():
                    found[kind] = list(values) if type(values) is list else strings(values)
            for parts in IP_FIELDS:
                for ip in strings(dig(event, parts)):
                    _add(found, "ip", ip)
            for parts in USER_FIELDS:
                value = dig(event, parts)
                if type(value) is str:
                    _add(found, "user", value)
            for parts in HOST_FIELDS:
                value = dig(event, parts)
                if type(value) is str:
                    _add(found, "hosts", value.lower().rstrip("."))
            for parts in HASH_OWNERS:
                hashes: Any = dig(event, parts)
                if type(hashes) is dict:
                    for kind in HASH_KINDS:
                        value = hashes.get(kind)
                        if type(value) is str:
                            _add(found, "hash", value.lower())
            sysmon = dig(event, SYSMON_HASHES)
            if type(sysmon) is str:
                for part in sysmon.split(","):
                    _, sep, value = part.partition("=")
                    if sep:
                        _add(found, "hash", value.strip().lower())
            if found:
                event["related"] = found
        return events
