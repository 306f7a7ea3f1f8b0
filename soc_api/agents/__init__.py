"""Agents and sites: inventory, health, versions, policy assignment, enrolment tokens, revocation.

The collector owns the registry of agents and tokens; this package reaches it only through the
collector's admin API (:mod:`collector.ingest.admin`), since the two may run on different machines,
and joins it with the latest ``soc.inventory`` snapshot of each agent from the event store.
"""
