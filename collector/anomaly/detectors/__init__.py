"""The detectors, one module each; ``all_detectors`` is the registry the engine runs."""

from __future__ import annotations

from collector.anomaly.base import Detector
from collector.anomaly.detectors.beacon import BeaconDetector
from collector.anomaly.detectors.dns import DnsDetector
from collector.anomaly.detectors.exfil import ExfilDetector
from collector.anomaly.detectors.fanout import FanoutDetector
from collector.anomaly.detectors.rarity import RarityDetector
from collector.anomaly.detectors.volume import VolumeDetector
from collector.anomaly.detectors.zone_policy import ZonePolicyDetector


def all_detectors() -> list[Detector]:
    return [
        VolumeDetector(),
        FanoutDetector(),
        BeaconDetector(),
        ExfilDetector(),
        DnsDetector(),
        RarityDetector(),
        ZonePolicyDetector(),
    ]
