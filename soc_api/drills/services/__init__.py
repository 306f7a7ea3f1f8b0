"""Drill plan, record and drill-alert services."""
