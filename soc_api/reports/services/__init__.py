"""Report data builders (annual, quarterly)."""
