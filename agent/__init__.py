"""The agent: sources (files, journald, Windows Event Log, host inventory, network flows) -> disk spool -> collector."""
