"""Processor: split DNS query names into registered domain and sub-domain (ECS ``dns.question.*``).

Rules and detectors that count "many different sub-domains under one parent" (tunnelling, DGA)
need the parent as a field; the split uses the offline heuristic of :mod:`collector.pipeline.domains`.
"""

from __future__ import annotations

from collector.pipeline.base import Processor
from collector.pipeline.domains import DomainSplitter
from soc_common.ecs import Event


class DnsDomains(Processor):
    name = "dns_domains"

    def __init__(self, splitter: DomainSplitter | None = None) -> None:
        self.splitter = splitter or DomainSplitter()

    def process(self, events: list[Event]) -> list[Event]:
        for event in events:
            dns = event.get("dns")
            question = dns.get("question") if isinstance(dns, dict) else None
            if not isinstance(question, dict) or "registered_domain" in question:
                continue
            name = question.get("name")
            if not isinstance(name, str) or not name:
                continue
            sub, registered = self.splitter.split(name)
            question["registered_domain"] = registered
            if sub:
                question["subdomain"] = sub
            if registered:
                question["top_level_domain"] = registered.rsplit(".", 1)[-1]
        return events
