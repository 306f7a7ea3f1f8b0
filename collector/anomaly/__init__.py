"""Anomaly detection over the event store: per-host, per-user and per-zone baselines and behaviours
that catch what no Sigma rule names (volume spikes and silence, scans, beacons, exfiltration, DNS
tunnelling, first-seen behaviour, zone-policy breaches).

Detectors use only the store contract's aggregations (``collector.store.base``), so they run the
same on SQLite and Elasticsearch. ``AnomalyService`` schedules them; ``cli.app`` is the command line.
"""
