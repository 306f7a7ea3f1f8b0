"""Per-channel Event Log bookmarks persisted atomically.

A bookmark is written only after ``emit`` returned (the events are in the spool), and written with
temp file + fsync + rename, so after a crash or power loss the file holds either the old or the new
position, never a torn one: a restart resumes exactly, at worst re-reading one batch, which the
collector drops as duplicates by ``event.id``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


class BookmarkStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        #: set when the file existed but could not be read (the source reports it in status)
        self.load_error: str | None = None
        self._bookmarks: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.load_error = f"{self.path}: unreadable bookmarks, starting fresh: {exc}"
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): v for k, v in raw.items() if isinstance(v, str)}

    def get(self, channel: str) -> str | None:
        return self._bookmarks.get(channel)

    def set(self, channel: str, bookmark: str) -> None:
        """Record and persist the position of ``channel``."""
        self._bookmarks[channel] = bookmark
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._bookmarks, out, ensure_ascii=False, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if hasattr(os, "O_DIRECTORY"):
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def as_dict(self) -> dict[str, str]:
        return dict(self._bookmarks)
