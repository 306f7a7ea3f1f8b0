"""Scheduled Sigma detection over the Elasticsearch store: the same rules as the streaming engine.

- :mod:`.convert`: rules -> Lucene queries (pySigma's Elasticsearch backend + our pipeline).
- :mod:`.runner`: one rule over its next ``event.ingested`` window; checkpoints and run reports
  in :mod:`.state`; correlations in :mod:`.correlate`.
- :mod:`.service`: APScheduler loop; :mod:`.cli`: ``soc collector scheduled ...``.
"""
