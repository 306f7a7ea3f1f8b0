"""Display names of stored codes (statuses, severities, roles...): msgids marked for extraction."""

from __future__ import annotations

from soc_api.web.i18n import N_

LABELS: dict[str, dict[str, str]] = {
    "status": {
        "new": N_("New"),
        "acknowledged": N_("Acknowledged"),
        "in_progress": N_("In progress"),
        "closed": N_("Closed"),
    },
    "severity": {
        "informational": N_("Informational"),
        "low": N_("Low"),
        "medium": N_("Medium"),
        "high": N_("High"),
        "critical": N_("Critical"),
    },
    "close_reason": {
        "true_positive": N_("True positive"),
        "false_positive": N_("False positive"),
        "benign": N_("Benign"),
        "duplicate": N_("Duplicate"),
    },
    "role": {
        "admin": N_("Administrator"),
        "officer": N_("Security officer"),
        "approver": N_("Approver"),
        "auditor": N_("Auditor"),
    },
    "dossier_status": {
        "drafting": N_("Drafting"),
        "submitted": N_("Submitted"),
        "returned": N_("Returned for completion"),
        "appraised": N_("Appraised"),
        "approved": N_("Approved"),
    },
    "dossier_action": {
        "complete_and_submit": N_("Complete and submit"),
        "appraise": N_("Appraise"),
        "approve": N_("Approve"),
    },
    "authority": {
        "owner": N_("System owner"),
        "dedicated_unit": N_("Dedicated security unit"),
        "independent_council": N_("Independent appraisal council"),
        "mps": N_("Ministry of Public Security"),
        "mod": N_("Ministry of Defence"),
        "cipher_committee": N_("Government Cipher Committee"),
        "mic": N_("Ministry of Information and Communications"),
    },
    "plan_state": {
        "not_started": N_("Not started"),
        "partial": N_("Partly deployed"),
        "full": N_("Fully deployed"),
    },
    "sort": {
        "-timestamp": N_("Newest first"),
        "timestamp": N_("Oldest first"),
        "-severity": N_("Most severe first"),
        "severity": N_("Least severe first"),
        "-last_seen": N_("Recently seen first"),
    },
}


def label(kind: str, code: str | None) -> str:
    """The msgid for ``code`` of ``kind`` (the code itself when unknown, shown as is)."""
    if code is None:
        return ""
    return LABELS.get(kind, {}).get(code, code)
