"""Persisted read positions of the agent's sources (file offsets, journald cursors).

Positions are written right after ``emit`` returns (the events are then in the spool), with
write-temp + fsync + rename, so after a crash the file holds either the old or the new positions,
never a torn mix: a restart resumes exactly, re-reading at most the last unacknowledged batch.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from soc_common.fileio import write_atomic

REGISTRY_VERSION = 1


def machine_identity() -> str:
    """This host's stable identity for event ids: systemd's machine-id, else the host name."""
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(candidate).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if value:
            return value
    return socket.gethostname()


@dataclass(slots=True)
class FilePosition:
    """Where reading of one file (identified by device, inode and first-bytes fingerprint) stands.

    ``generation`` counts truncations/replacements of the same inode, so events after a
    copytruncate get new ids even at the same offsets. ``pending_time`` is the read time given to
    lines without a time of their own in a batch being emitted, saved before the emit with the
    batch's end in this file (``pending_end``): lines re-read up to there after a crash get it again,
    so they repeat their first ``@timestamp`` as well as their ``event.id``.
    """

    path: str
    dev: int
    ino: int
    offset: int
    fp_len: int
    fp: str
    generation: int = 0
    pending_time: str | None = None
    pending_end: int = 0

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}"

    def clear_pending(self) -> None:
        self.pending_time = None
        self.pending_end = 0


class OffsetRegistry:
    """The JSON file of :class:`FilePosition` for one file source, keyed by ``dev:ino``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.load_error: str | None = None

    def load(self) -> dict[str, FilePosition]:
        """Saved positions; an unreadable registry is reported in ``load_error`` and treated as empty."""
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.load_error = f"{self.path}: unreadable offsets registry ({exc}); starting afresh"
            return {}
        out: dict[str, FilePosition] = {}
        files = raw.get("files", []) if isinstance(raw, dict) else []
        for item in files:
            try:
                pos = FilePosition(**_pick(item))
            except (TypeError, ValueError):
                continue
            out[pos.key] = pos
        return out

    def save(self, positions: list[FilePosition]) -> None:
        doc = {"version": REGISTRY_VERSION, "files": [asdict(p) for p in positions]}
        write_atomic(self.path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))


def _pick(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TypeError("entry is not an object")
    fields = ("path", "dev", "ino", "offset", "fp_len", "fp", "generation", "pending_time", "pending_end")
    picked = {k: item[k] for k in fields if k in item}  # registries before pending_* lack them
    if not isinstance(picked.get("pending_time"), str):
        picked.pop("pending_time", None)  # never copy a non-text "time" into events
    return picked


class CursorStore:
    """A single opaque position (journald cursor) in its own file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> str | None:
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value or None

    def save(self, cursor: str) -> None:
        write_atomic(self.path, cursor.encode("utf-8"))
