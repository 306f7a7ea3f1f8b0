"""``related.*``: every IP, user, host name and hash an event mentions, in one place to pivot on.

Hot path: this runs on every event, and the naive form (one nested lookup per candidate field, two
dozen of them) cost more than any other processor. The candidate fields are therefore compiled into
a plan per *shape*: the tuple of an event's top-level keys, which costs one C call to take. Events
of one source share a shape, so the plan (the candidate fields under those keys, in the declared
order) is built once and reused; an event then reads only fields it can have, in order, and
``related.*`` lists come out exactly as if every field had been read in turn.
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
_IP, _USER, _HOST, _HASHES, _SYSMON = range(5)  # order matters: <= _HOST means one string
# (top-level object, key below it, path below that key, how). Most candidates are two levels deep
# (``source.ip``), so the first step below the top-level object is a plain ``dict.get`` and only
# the deeper ones walk a path.
_Step = tuple[str, str, Path, int]


def _declared() -> tuple[_Step, ...]:
    ordered: list[tuple[Path, int]] = [(p, _IP) for p in IP_FIELDS]
    ordered += [(p, _USER) for p in USER_FIELDS]
    ordered += [(p, _HOST) for p in HOST_FIELDS]
    ordered += [(p, _HASHES) for p in HASH_OWNERS]
    ordered.append((SYSMON_HASHES, _SYSMON))
    return tuple((parts[0], parts[1], parts[2:], how) for parts, how in ordered)


_DECLARED = _declared()
_KIND = {_IP: "ip", _USER: "user", _HOST: "hosts", _HASHES: "hash", _SYSMON: "hash"}
_SHAPES_MAX = 1024  # distinct shapes are few (one or two per source); the bound caps memory (<1 MB)


def _below(node: Any, rest: Path) -> Any:
    for part in rest:
        if type(node) is not dict:
            return None
        node = node.get(part)
    return node


def _values(value: Any, how: int) -> list[str]:
    """The related values one candidate field holds (possibly none)."""
    kind = type(value)
    if how == _IP:
        if kind is str:
            return [value]
        return [v for v in value if type(v) is str] if kind is list else []
    if kind is str:
        if how == _USER:
            return [value]
        if how == _HOST:
            return [value.lower().rstrip(".")]
        if how == _SYSMON:
            out = []
            for part in value.split(","):
                _, sep, digest = part.partition("=")
                if sep:
                    out.append(digest.strip().lower())
            return out
        return []
    if how == _HASHES and kind is dict:
        return [hashed.lower() for k in HASH_KINDS if type(hashed := value.get(k)) is str]
    return []


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

    def __init__(self) -> None:
        self._plans: dict[tuple[str, ...], tuple[tuple[str, str, Path, int, str], ...]] = {}

    def _plan(self, shape: tuple[str, ...]) -> tuple[tuple[str, str, Path, int, str], ...]:
        """The declared candidates under the keys of ``shape``, in declared order, with their kind."""
        plan = tuple((top, key, rest, how, _KIND[how]) for top, key, rest, how in _DECLARED if top in shape)
        if len(self._plans) >= _SHAPES_MAX:
            self._plans.clear()
        self._plans[shape] = plan
        return plan

    def process(self, events: list[Event]) -> list[Event]:
        plans = self._plans
        for event in events:
            existing = event.get("related")
            found = _existing(existing) if type(existing) is dict else {}
            shape = tuple(event)
            plan = plans.get(shape)
            if plan is None:
                plan = self._plan(shape)
            for top, key, rest, how, kind in plan:
                node = event[top]
                if type(node) is not dict:
                    continue
                value = node.get(key)
                if rest and value is not None:
                    value = _below(value, rest)
                if value is None:
                    continue
                if how <= _HOST and type(value) is str:  # one string: the common case, inline
                    if how == _HOST:
                        value = value.lower().rstrip(".")
                    values = found.get(kind)
                    if values is None:
                        values = found[kind] = []
                    if value and value not in values:
                        values.append(value)
                    continue
                new = _values(value, how)
                if not new:
                    continue
                values = found.get(kind)
                if values is None:
                    values = found[kind] = []
                for item in new:
                    if item and item not in values:
                        values.append(item)
            if found:
                event["related"] = found
        return events
