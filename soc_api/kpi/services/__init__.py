"""KPI computation services."""
