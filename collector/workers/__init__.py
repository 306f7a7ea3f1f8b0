"""Ingest in several processes (``workers`` > 1 in the collector's configuration).

One Python process runs the collector's receivers, parsers, enrichment and store writes on one core
(the GIL). With workers, the supervisor (:mod:`collector.workers.pool`) starts N worker processes
(:mod:`collector.workers.process`); each is a whole ingest pipeline bound to the shared ports and
writing the same store, and sends the events it stored back over its link
(:mod:`collector.workers.link`), so detection still runs once over everything, in the supervisor,
with its correlation state whole. Retention, indexing, anomaly detection and ``/metrics`` stay in the
supervisor; the workers' counters are summed into its ``/metrics``.
"""
