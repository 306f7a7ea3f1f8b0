"""Incidents: from the first alert to the report (lifecycle, playbooks, evidence, obligations)."""
