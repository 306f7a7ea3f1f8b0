"""Security assessments (compliance, effectiveness, vulnerability scans, penetration tests), their
findings and the improvement actions shared with drills."""
