"""The ``flows`` agent source: meter a live interface and/or replay capture files into the spool.

Replayed files give the same event ids every time (packet time, stable ids), so re-reading a file
after a crash only produces duplicates the collector drops; no read position needs to be kept.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import Field, model_validator

from agent.flows import meter_pcap
from agent.flows.capture import CaptureError, LiveCapture
from agent.flows.meter import FlowMeter
from agent.flows.pcap import PcapError
from agent.sources.base import Emit, Source
from soc_common.config import Section
from soc_common.ecs import Event


class FlowSourceSettings(Section):
    """``[[sources]] type = "flows"``: a live interface, capture files to replay, or both."""

    interface: str | None = None
    bpf: str | None = None  # kernel capture filter, e.g. "not port 9443" to skip our own shipping
    pcap_files: list[str] = Field(default_factory=list)
    active_timeout: float = Field(default=300.0, gt=0)
    idle_timeout: float = Field(default=60.0, gt=0)
    metadata: bool = True  # DNS / TLS SNI / HTTP request events besides flows
    promisc: bool = False
    max_flows: int = Field(default=65_536, gt=0)  # memory bound, about 0.8 KB a flow; oldest tenth evicted when full
    batch_size: int = Field(default=1000, gt=0)  # events per emit call
    expire_interval: float = Field(default=1.0, gt=0)  # live mode: seconds between wall-clock expiry checks
    retry_interval: float = Field(default=30.0, gt=0)  # live mode: wait before reopening a failed capture

    @model_validator(mode="after")
    def _something_to_read(self) -> FlowSourceSettings:
        if not self.interface and not self.pcap_files:
            raise ValueError("set 'interface' (live capture) and/or 'pcap_files' (replay)")
        return self


class FlowSource(Source):
    """Runs a :class:`FlowMeter` over the configured captures and emits its events."""

    type = "flows"
    settings_model = FlowSourceSettings

    def __init__(self, name: str, settings: FlowSourceSettings, host: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        self.settings = settings
        self.host = host if host is not None else {"name": socket.gethostname()}
        self.files_done: list[str] = []
        self.meter: FlowMeter | None = None

    def _new_meter(self) -> FlowMeter:
        s = self.settings
        self.meter = FlowMeter(
            host=self.host,
            active_timeout=s.active_timeout,
            idle_timeout=s.idle_timeout,
            metadata=s.metadata,
            max_flows=s.max_flows,
        )
        return self.meter

    def _emit_batches(self, emit: Emit, events: Iterable[Event]) -> None:
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= self.settings.batch_size:
                emit(batch)
                batch = []
        if batch:
            emit(batch)

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    def run(self, emit: Emit, stop: threading.Event) -> None:
        for path in self.settings.pcap_files:
            if stop.is_set():
                return
            self._replay(path, emit, stop)
        if self.settings.interface:
            self._live(emit, stop)

    def _replay(self, path: str, emit: Emit, stop: threading.Event) -> None:
        meter = self._new_meter()

        def until_stopped() -> Iterable[Event]:
            for event in meter_pcap(path, meter):
                yield event
                if stop.is_set():
                    return

        try:
            self._emit_batches(emit, until_stopped())
        except PcapError as exc:
            self._error(str(exc))
        self._emit_batches(emit, meter.flush())
        self.files_done.append(path)

    def _live(self, emit: Emit, stop: threading.Event) -> None:
        s = self.settings
        assert s.interface is not None
        while not stop.is_set():
            capture = LiveCapture(s.interface, s.bpf, promisc=s.promisc)
            try:
                with capture:
                    capture.run(self._new_meter(), lambda ev: self._emit_batches(emit, ev), stop,
                                expire_every=s.expire_interval)  # fmt: skip
            except CaptureError as exc:
                self._error(str(exc))
                stop.wait(s.retry_interval)

    def status(self) -> dict[str, Any]:
        status = super().status()
        status["files_done"] = len(self.files_done)
        if self.meter is not None:
            status.update(self.meter.stats())
        return status
