"""Fixtures for the agent tests; the helpers live in ``tests.agent.support``."""

from tests.agent.support import collector, plugins

__all__ = ["collector", "plugins"]
