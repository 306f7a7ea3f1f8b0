"""Cyber-defence and incident-response drills (diễn tập): annual plans, records, drill alerts."""
