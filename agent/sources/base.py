"""The source plug-in contract.

A source runs in its own thread, reads something on the host and hands ECS events to ``emit`` in
batches. ``emit`` returns once the events are safely in the agent's disk spool, so a source may
persist its position (file offset, journald cursor, Windows bookmark) right after ``emit`` returns:
that ordering is what makes delivery at-least-once across crashes.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from soc_common.ecs import Event

Emit = Callable[[Sequence[Event]], None]


class Source(ABC):
    """One configured input of the agent."""

    #: the plug-in name used in configuration (``[[sources]] type = "files"``)
    type: str = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors = 0
        self.last_error: str | None = None

    @abstractmethod
    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Read until ``stop`` is set, handing events to ``emit``. Must not raise on bad input."""

    def status(self) -> dict[str, Any]:
        """What ``soc agent status`` shows for this source (position, lag, errors)."""
        return {"name": self.name, "type": self.type, "errors": self.errors, "last_error": self.last_error}
