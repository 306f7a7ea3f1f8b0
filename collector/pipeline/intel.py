"""Threat-intelligence matching against local indicator files.

Files hold one indicator per line (IP, CIDR, domain or hash, type guessed; ``#`` comments) or CSV
rows ``type,value,description``. Domains match their subdomains too (an indicator ``evil.example``
flags ``cdn.evil.example``), because attackers rotate hosts under a registered domain. Files are
re-read when they change, so feeds can be refreshed without restarting the collector.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from collector.pipeline.base import Processor
from collector.pipeline.cidr import CidrMap
from collector.pipeline.fields import dig, strings
from collector.pipeline.fields import path as field_path
from soc_common.ecs import Event, add_tag, put

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9a-f]+$")
_HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]{1,63}$")

IP_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "dns.resolved_ip")
DOMAIN_FIELDS = ("dns.question.name", "url.domain", "tls.client.server_name", "destination.domain")
HASH_FIELD = "related.hash"  # filled by the Related processor, which runs first
_IP_PATHS = tuple((f, field_path(f)) for f in IP_FIELDS)
_DOMAIN_PATHS = tuple((f, field_path(f)) for f in DOMAIN_FIELDS)
_HASH_PATH = field_path(HASH_FIELD)


@dataclass(frozen=True)
class Indicator:
    type: str  # "ip", "domain", "hash"
    value: str
    description: str
    provider: str  # the file it came from


class IndicatorSet:
    def __init__(self) -> None:
        self.ips: list[tuple[str, Indicator]] = []
        self.domains: dict[str, Indicator] = {}
        self.hashes: dict[str, Indicator] = {}
        self.skipped = 0
        self.ip_map: CidrMap[Indicator] = CidrMap()

    def __len__(self) -> int:
        return len(self.ips) + len(self.domains) + len(self.hashes)

    def add(self, kind: str, value: str, description: str, provider: str) -> bool:
        value = value.strip().lower().rstrip(".")
        kind = kind.strip().lower()
        if kind in ("", "auto"):
            kind = _guess(value)
        elif kind in ("ipv4", "ipv6", "ip-dst", "ip-src", "cidr", "ipv4-addr", "ipv6-addr"):
            kind = "ip"
        elif kind in ("hostname", "fqdn", "domain-name"):
            kind = "domain"
        elif kind in ("md5", "sha1", "sha256", "sha512", "file"):
            kind = "hash"
        if kind == "ip" and _guess(value) == "ip":
            self.ips.append((value, Indicator("ip", value, description, provider)))
        elif kind == "domain" and _DOMAIN.match(value):
            self.domains.setdefault(value, Indicator("domain", value, description, provider))
        elif kind == "hash" and _guess(value) == "hash":
            self.hashes.setdefault(value, Indicator("hash", value, description, provider))
        else:
            self.skipped += 1
            return False
        return True

    def freeze(self) -> IndicatorSet:
        self.ip_map = CidrMap(self.ips)
        return self

    def match_domain(self, name: str) -> Indicator | None:
        name = name.lower().rstrip(".")
        while name:
            if (hit := self.domains.get(name)) is not None:
                return hit
            _, _, name = name.partition(".")
        return None


def _guess(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
        return "ip"
    except ValueError:
        pass
    if len(value) in _HASH_LENGTHS and _HEX.match(value):
        return "hash"
    return "domain" if _DOMAIN.match(value) and "." in value else "unknown"


def load_indicators(paths: list[Path]) -> IndicatorSet:
    """Read every file; unreadable files and unusable lines are logged and skipped."""
    out = IndicatorSet()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.error("intel file %s unreadable: %s", path, exc)
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "," in line:
                row = next(csv.reader(io.StringIO(line)))
                if len(row) >= 2 and row[0].strip().lower() != "type":
                    out.add(row[0], row[1], row[2].strip() if len(row) > 2 else "", path.name)
            else:
                out.add("auto", line, "", path.name)
    if out.skipped:
        log.warning("intel: %d unusable indicator lines skipped", out.skipped)
    return out.freeze()


class ThreatIntel(Processor):
    """Tags events mentioning a known-bad IP, domain or hash (``threat.indicator.*``, tag ``intel_match``)."""

    name = "threat_intel"

    def __init__(self, paths: list[Path], reload_seconds: float = 60.0) -> None:
        self.paths = paths
        self.reload_seconds = reload_seconds
        self.matches = 0
        self._lock = threading.Lock()
        self._stamp = self._mtimes()
        self._checked = time.monotonic()
        self.indicators = load_indicators(paths)

    def _mtimes(self) -> tuple[float, ...]:
        out = []
        for p in self.paths:
            try:
                out.append(os.stat(p).st_mtime)
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.reload_seconds:
            return
        with self._lock:
            if now - self._checked < self.reload_seconds:
                return
            self._checked = now
            stamp = self._mtimes()
            if stamp != self._stamp:
                self.indicators = load_indicators(self.paths)
                self._stamp = stamp
                log.info("intel reloaded: %d indicators", len(self.indicators))

    def process(self, events: list[Event]) -> list[Event]:
        if not self.paths:
            return events
        self._maybe_reload()
        intel = self.indicators
        if not len(intel):
            return events
        for event in events:
            hits: list[tuple[str, str, Indicator]] = []
            if intel.ip_map:
                for field, parts in _IP_PATHS:
                    for ip in strings(dig(event, parts)):
                        if (hit := intel.ip_map.lookup(ip)) is not None:
                            hits.append((field, ip, hit))
            if intel.domains:
                for field, parts in _DOMAIN_PATHS:
                    name = dig(event, parts)
                    if type(name) is str and (hit := intel.match_domain(name)) is not None:
                        hits.append((field, name, hit))
            if intel.hashes:
                for value in strings(dig(event, _HASH_PATH)):
                    if (hit := intel.hashes.get(value.lower())) is not None:
                        hits.append((HASH_FIELD, value, hit))
            if hits:
                self._tag(event, hits)
        return events

    def _tag(self, event: Event, hits: list[tuple[str, str, Indicator]]) -> None:
        self.matches += 1
        first = hits[0][2]
        put(
            event,
            "threat.indicator.type",
            {"ip": "ipv4-addr", "domain": "domain-name", "hash": "file"}[first.type],
        )
        put(event, "threat.indicator.name", first.value)
        put(event, "threat.indicator.provider", first.provider)
        if first.description:
            put(event, "threat.indicator.description", first.description)
        put(
            event,
            "threat.enrichments",
            [
                {
                    "indicator": {"type": hit.type, "name": hit.value, "provider": hit.provider},
                    "matched": {"field": f, "atomic": v},
                }
                for f, v, hit in hits
            ],
        )
        add_tag(event, "intel_match")
