"""The pipeline, assembled in one place so its order is visible:

    Normalize -> EnrichSite -> EnrichZone -> EnrichSystem -> Related -> ThreatIntel
      -> StoreSink (durable; its result is the receiver's ack) -> DetectionSink (async)

:class:`Pipeline` is shared by all receiver threads. Processors only touch the batch they are given,
so no lock is needed around them; the store and the detection queue do their own locking.
Processors here never drop or add events, so positions in the store's result match the receiver's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from collector.config import CollectorConfig
from collector.metrics import CollectorMetrics
from collector.pipeline.base import Processor
from collector.pipeline.dns import DnsDomains
from collector.pipeline.enrich import EnrichSite, EnrichZone
from collector.pipeline.intel import ThreatIntel
from collector.pipeline.normalize import Normalize
from collector.pipeline.related import Related
from collector.pipeline.sinks import DetectionEngine, DetectionFeed, DetectionSink, StoreSink
from collector.pipeline.systems import EnrichSystem, SystemResolver, system_resolver
from collector.store.base import EventStore, WriteResult
from soc_common.alert import AlertSink
from soc_common.ecs import Event, get

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self,
        processors: Sequence[Processor],
        store: StoreSink,
        detection: DetectionFeed | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.processors = list(processors)
        self.store = store
        self.detection = detection
        self.metrics = metrics or CollectorMetrics()

    def handle(self, events: list[Event], source: str = "agent") -> WriteResult:
        """Run ``events`` through the chain and store them; raises StoreError when not stored.

        Returns the store's result: positions in ``errors`` refer to ``events``.
        """
        m = self.metrics
        for processor in self.processors:
            started = time.perf_counter()
            try:
                events = processor.process(events)
            except Exception:  # a processor bug must not cost the batch: pass it on as it was
                m.processor_errors.labels(processor=processor.name).inc()
                log.exception("processor %s failed on a batch of %d events", processor.name, len(events))
            m.processor_seconds.labels(processor=processor.name).inc(time.perf_counter() - started)
            m.processor_events.labels(processor=processor.name).inc(len(events))
        failed = _count_parse_failed(events)
        if failed:
            m.failed.labels(source=source).inc(failed)
        m.parsed.labels(source=source).inc(len(events) - failed)
        result = self.store.store_batch(events)
        m.stored.labels(source=source).inc(result.stored)
        m.deduplicated.labels(source=source).inc(result.duplicates)
        if result.errors:
            m.failed.labels(source=source).inc(len(result.errors))
        if self.detection is not None and events:
            bad = {pos for pos, _ in result.errors}
            self.detection.write([e for i, e in enumerate(events) if i not in bad] if bad else events)
        return result

    def receiver(self, source: str) -> _SourceHandler:
        """A ``handle(events)`` callback for a receiver, counting under ``source``."""
        return _SourceHandler(self, source)

    def close(self) -> None:
        if self.detection is not None:
            self.detection.close()


class _SourceHandler:
    def __init__(self, pipeline: Pipeline, source: str) -> None:
        self.pipeline = pipeline
        self.source = source

    def __call__(self, events: list[Event]) -> None:
        # Counted after the hand-over: a receiver retries a refused batch with the same records (store
        # down), and counting each attempt would report several times what the senders sent.
        if events:
            self.pipeline.handle(events, source=self.source)
            self.pipeline.metrics.received.labels(source=self.source).inc(len(events))


def _count_parse_failed(events: list[Event]) -> int:
    """Events carrying ``soc.parse_error``; one flat loop, as it runs on every event."""
    failed = 0
    for event in events:
        soc = event.get("soc")
        if type(soc) is dict:  # the normalised shape: skip the general dotted-path lookup
            if soc.get("parse_error") is not None:
                failed += 1
        elif soc is None and "soc.parse_error" not in event:  # no soc at all (most syslog lines)
            continue
        elif get(event, "soc.parse_error") is not None:
            failed += 1
    return failed


def build_processors(config: CollectorConfig, systems: SystemResolver | None = None) -> list[Processor]:
    enrich = config.enrich
    return [
        Normalize(enrich.max_field_chars, enrich.clock_skew_tolerance, enrich.late_arrival_after),
        EnrichSite(enrich),
        EnrichZone(enrich),
        EnrichSystem(systems if systems is not None else system_resolver(enrich, config.systems_snapshot_path)),
        Related(),
        DnsDomains(),
        ThreatIntel(list(enrich.intel_files)),
    ]


def build_pipeline(
    config: CollectorConfig,
    store: EventStore,
    detector: DetectionEngine | None,
    alert_sink: AlertSink | None,
    metrics: CollectorMetrics | None = None,
    systems: SystemResolver | None = None,
    *,
    detection: DetectionFeed | None = None,
) -> Pipeline:
    """The one place the chain is put together; ``detection`` replaces the detection sink (a worker's
    forwarder to its supervisor)."""
    metrics = metrics or CollectorMetrics()
    if detection is None and detector is not None and alert_sink is not None:
        detection = DetectionSink(
            detector, alert_sink, metrics, config.detection.queue_batches, config.detection.queue_events
        )
    return Pipeline(build_processors(config, systems), StoreSink(store, metrics), detection, metrics)
