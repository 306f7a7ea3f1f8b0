"""An ingest worker process: one whole receive -> parse -> enrich -> store pipeline on shared ports."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

from collector.config import CollectorConfig
from collector.workers.link import FAILED, READY, STATS, WorkerLink

STATS_SECONDS = 1.0


def run_worker(
    config: CollectorConfig,
    index: int,
    conn: Connection,
    forward_detection: bool,
    log_level: int,
    shared_dir: Path | None = None,
) -> None:
    """The worker's main (started by :class:`collector.workers.pool.WorkerPool` with ``spawn``).

    ``shared_dir`` is the folder every worker of this collector shares for the run (rate-limit
    buckets, NetFlow exporter owners, mailboxes).
    """
    logging.basicConfig(
        level=log_level,
        format=f"%(asctime)s %(levelname)s [worker {index}] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger(__name__)
    stop = threading.Event()

    def _signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()  # systemd signals the whole group; the supervisor's "stop" may follow

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    link = WorkerLink(index, conn, forward_detection=forward_detection, shared_dir=shared_dir)
    from collector.runtime import Collector  # after logging is set: the import logs

    collector = Collector(config, worker=link)
    try:
        collector.start()
    except Exception as exc:
        log.error("worker %d could not start: %s", index, exc)
        collector.stop()
        link.send(FAILED, f"{type(exc).__name__}: {exc}")
        return

    def _watch() -> None:
        link.wait_for_stop()
        stop.set()

    threading.Thread(target=_watch, name="worker-link", daemon=True).start()
    try:
        link.send(READY, collector.ports())
        while not stop.wait(STATS_SECONDS):
            link.send(STATS, collector.snapshot())
    except (OSError, EOFError):
        log.warning("worker %d lost its supervisor; stopping", index)
    finally:
        collector.stop()
