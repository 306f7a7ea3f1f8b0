"""``related.*``: every IP, user, host name and hash an event mentions, in one place to pivot on.

Hot path: this runs on every event, and the naive form (one nested lookup per candidate field, two
dozen of them) cost more than any other processor. The candidate fields are therefore compiled into
a plan keyed by top-level object, so an event is visited once per top-level key it actually has;
hits are then put back into the declared field order, so ``related.*`` lists come out exactly as if
each field had been read in turn.
"""

from __future__ import annotations

from typing import Any

from collector.pipeline.base import Processor
from collector.pipeline.fields import Path, path
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

# How a field's value turns into related values.
_IP, _USER, _HOST, _HASHES, _SYSMON = range(5)
# (priority, key below the top-level object, path below that key, how): priority is the field's place
# in the declared order. Most candidates are two levels deep (``source.ip``), so the first step
# below the top-level object is a plain ``dict.get`` and only the deeper ones walk a path.
_Step = tuple[int, str, Path, int]


def _plan() -> dict[str, tuple[_Step, ...]]:
    ordered: list[tuple[Path, int]] = [(p, _IP) for p in IP_FIELDS]
    ordered += [(p, _USER) for p in USER_FIELDS]
    ordered += [(p, _HOST) for p in HOST_FIELDS]
    ordered += [(p, _HASHES) for p in HASH_OWNERS]
    ordered.append((SYSMON_HASHES, _SYSMON))
    plan: dict[str, list[_Step]] = {}
    for priority, (parts, how) in enumerate(ordered):
        plan.setdefault(parts[0], []).append((priority, parts[1], parts[2:], how))
    return {top: tuple(steps) for top, steps in plan.items()}


_PLAN = _plan()


def _below(node: Any, rest: Path) -> Any:
    for part in rest:
        if type(node) is not dict:
            return None
        node = node.get(part)
    return node


def _hits(event: Event) -> list[tuple[int, str, str]]:
    """``(priority, kind, value)`` for every candidate value, in no particular order."""
    hits: list[tuple[int, str, str]] = []
    for top, node in event.items():
        steps = _PLAN.get(top)
        if steps is None or type(node) is not dict:
            continue
        for priority, key, rest, how in steps:
            value = node.get(key)
            if rest and value is not None:
                value = _below(value, rest)
            if value is None:
                continue
            if how == _IP:
                if type(value) is str:
                    hits.append((priority, "ip", value))
                elif type(value) is list:
                    hits.extend((priority, "ip", v) for v in value if type(v) is str)
            elif type(value) is str:
                if how == _USER:
                    hits.append((priority, "user", value))
                elif how == _HOST:
                    hits.append((priority, "hosts", value.lower().rstrip(".")))
                elif how == _SYSMON:
                    for part in value.split(","):
                        _, sep, digest = part.partition("=")
                        if sep:
                            hits.append((priority, "hash", digest.strip().lower()))
            elif how == _HASHES and type(value) is dict:
                for kind in HASH_KINDS:
                    hashed = value.get(kind)
                    if type(hashed) is str:
                        hits.append((priority, "hash", hashed.lower()))
    return hits


def _existing(related: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, values in related.items():
        if type(values) is list:
            found[kind] = list(values)
        elif type(values) is str:
            found[kind] = [values]
        else:
            found[kind] = []
    return found


class Related(Processor):
    name = "related"

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            existing = event.get("related")
            found = _existing(existing) if type(existing) is dict else {}
            hits = _hits(event)
            if len(hits) > 1:
                hits.sort(key=_priority)  # stable: values of one field keep their order
            for _, kind, value in hits:
                values = found.get(kind)
                if values is None:
                    values = found[kind] = []
                if value and value not in values:
                    values.append(value)
            if found:
                event["related"] = found
        return events


def _priority(hit: tuple[int, str, str]) -> int:
    return hit[0]
