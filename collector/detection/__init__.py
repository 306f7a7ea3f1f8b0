"""Sigma detection: pySigma rules compiled to in-process matchers, correlations, alerts, hunting.

Entry points: :func:`collector.detection.loader.load_engine` and
:meth:`collector.detection.engine.DetectionEngine.process`; ``soc hunt`` is
:func:`collector.detection.hunt.hunt_command`.
"""
