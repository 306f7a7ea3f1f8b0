"""Fixtures for the file-source tests; the helpers live in ``tests.files.support``."""

from tests.files.support import harness

__all__ = ["harness"]
