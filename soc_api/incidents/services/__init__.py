"""Incident services: each change is validated, audited and put on the timeline in one transaction."""
