"""Processor and sink contracts of the collector pipeline.

    receivers (agent ingest, syslog, NetFlow) -> [processors...] -> sinks (event store, detection)

A processor takes a batch of ECS events and returns the batch to pass on (it may edit events in
place, drop some, or add some). Processors must not raise on a bad event: they tag it
(``soc.parse_error`` / ``tags``) and pass it on, so one bad record never costs the good ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from soc_common.ecs import Event


class Processor(ABC):
    name: str = "processor"

    @abstractmethod
    def process(self, events: list[Event]) -> list[Event]: ...


class Sink(ABC):
    """A terminal step. ``write`` returns only when the batch is durably handled."""

    name: str = "sink"

    @abstractmethod
    def write(self, events: Sequence[Event]) -> None: ...
