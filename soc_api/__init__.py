"""The SOC API: the alert database, accounts, audit trail, triage endpoints and web pages."""
