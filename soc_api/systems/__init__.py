"""Information systems registry, security-level determination, level dossiers and plan tracking.

The legal parameters (criteria, authorities, time limits, requirement groups) are data in
``soc_api/profiles``; this package only evaluates them.
"""
