"""Copy the SOC database's host -> system links into the file the pipelines read (``soc.system_id``).

Runs in the collector's main process only (the supervisor when there are ingest workers), so the
database sees one reader however many workers there are. The file is rewritten only when the links
change, atomically, so a reader sees the old or the new copy; it stays when the database is
unreachable, and a collector restarted during an outage attributes with it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from collector.pipeline.systems import Link, snapshot_bytes
from collector.ticker import Ticker
from soc_common.fileio import write_atomic

log = logging.getLogger(__name__)


class RegistrySync:
    def __init__(self, database_url: str, snapshot: Path, interval: float) -> None:
        self.database_url = database_url
        self.snapshot = snapshot
        self.links = -1  # links in the last copy taken (-1: none yet)
        self.failures = 0
        self.last_ok: float | None = None  # time.time() of the last successful read
        self._written: bytes | None = None
        self._engine: Any = None
        self._failing = False
        self._ticker = Ticker("registry-sync", interval, self.sync_once, immediately=True)

    def start(self) -> RegistrySync:
        """Copy now and then every interval, on the ticker's thread: an unreachable database must not
        hold up the collector's start (the pipelines use the previous copy meanwhile)."""
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._ticker.stop()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def sync_once(self) -> bool:
        """Read the links and rewrite the file if they changed; False (counted, logged once per
        outage) when the database cannot be read or the file cannot be written."""
        try:
            links = self._read()
            data = snapshot_bytes(links)
            if data != self._written:
                write_atomic(self.snapshot, data)
                self._written = data
        except Exception as exc:  # any driver's errors; the message never carries the URL's password
            self.failures += 1
            if not self._failing:
                log.warning("systems registry not copied (keeping %s): %s", self.snapshot.name, type(exc).__name__)
                self._failing = True
            return False
        if self._failing:
            log.info("systems registry copied again: %d links", len(links))
        self._failing = False
        self.links, self.last_ok = len(links), time.time()
        return True

    def _read(self) -> list[Link]:
        from sqlalchemy.orm import Session

        from soc_api.db.session import make_engine
        from soc_api.systems.services.assets import asset_links

        if self._engine is None:
            self._engine = make_engine(self.database_url)
        with Session(self._engine) as session:
            return asset_links(session)

    def health(self) -> dict[str, Any]:
        age = None if self.last_ok is None else round(time.time() - self.last_ok, 1)
        return {"links": max(self.links, 0), "copied_s_ago": age, "failures": self.failures}
