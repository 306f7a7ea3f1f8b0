"""Settings of anomaly detection (``[anomaly]`` in collector.toml, ``SOC_COLLECTOR_ANOMALY__*``).

Every detector has its own parameter model with documented defaults, an ``enabled`` switch and a
learning period. ``sites`` overrides any detector parameter for one office, for example::

    [anomaly.sites.hn.fanout]
    distinct_hosts = 100          # this office runs an inventory scanner
    [anomaly.sites.dn.beacon]
    enabled = false

Overrides made at run time through ``AnomalyService.set_override`` are stored (with who and why)
in the state database and applied on top of these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from soc_common.config import Duration, Section

HOUR = 3600.0
DAY = 86400.0


class DetectorParams(Section):
    enabled: bool = True
    # How much history an entity (or the store) must have before the detector alerts on it.
    learning_days: float = Field(default=3.0, ge=0)


class VolumeParams(DetectorParams):
    """Events/hour per host, data source, zone and agent; outbound bytes/hour per zone."""

    spike_score: float = Field(default=6.0, gt=0)  # robust z-score above the seasonal median
    spike_ratio: float = Field(default=3.0, ge=1)  # and at least this multiple of the median
    min_spike_events: int = Field(default=500, ge=1)  # ignore spikes smaller than this (events/hour)
    min_spike_bytes: int = Field(default=200 * 1024 * 1024, ge=1)  # ignore byte spikes below this
    min_samples: int = Field(default=3, ge=1)  # samples a seasonal level needs to be used
    # Silence: the hourly median must be at least this for a zero hour to mean "stopped reporting".
    silence_min_median: float = Field(default=20.0, ge=1)
    silence_hours: int = Field(default=2, ge=1)  # consecutive empty hours before a silence alert
    weeks_kept: int = Field(default=6, ge=1, le=52)  # samples kept per weekday-hour slot
    max_entities: int = Field(default=20_000, ge=10)  # terms size per dimension per hour
    dimensions: list[str] = Field(default_factory=lambda: ["host", "dataset", "zone", "agent", "zone_out_bytes"])


class FanoutParams(DetectorParams):
    """Distinct destinations per source in a window: scans, sweeps, worm-like spread."""

    learning_days: float = Field(default=0.0, ge=0)  # thresholds are absolute; habits are learned
    window: Duration = 600.0
    distinct_hosts: int = Field(default=50, ge=2)  # host sweep
    distinct_ports: int = Field(default=100, ge=2)  # port scan
    admin_ports: list[int] = Field(default_factory=lambda: [22, 135, 139, 445, 3389, 5985, 5986])
    lateral_hosts: int = Field(default=15, ge=2)  # distinct hosts on admin ports (lateral movement)
    habit_multiplier: float = Field(default=3.0, ge=1)  # a habitual fan-out source must exceed its median x this
    habit_min_windows: int = Field(default=5, ge=1)  # windows above threshold before a source is "habitual"
    allow_sources: list[str] = Field(default_factory=list)  # scanners, NMS, backup servers
    max_sources: int = Field(default=10_000, ge=10)


class BeaconParams(DetectorParams):
    """Near-periodic connections from one host to one external destination."""

    learning_days: float = Field(default=0.0, ge=0)
    lookback: Duration = DAY  # how far back each run looks for repetitions
    interval: Duration = HOUR  # how often the (costlier) beacon analysis runs
    min_connections: int = Field(default=12, ge=4)
    max_relative_jitter: float = Field(default=0.2, gt=0)  # MAD of gaps / median gap
    min_regular_fraction: float = Field(default=0.7, gt=0, le=1)  # gaps within tolerance of the period
    tolerance: float = Field(default=0.25, gt=0)  # relative deviation still counted as "on the beat"
    min_period: Duration = 5.0  # faster than this is streaming/polling, not beaconing
    resolution: int = Field(default=1, ge=1)  # histogram bucket seconds for connection start times
    max_prevalence: int = Field(default=5, ge=1)  # destinations contacted by more sources are shared services
    external_only: bool = True  # internal periodic traffic (AD, NTP, SMB) is the classic false positive
    max_pairs: int = Field(default=2000, ge=1)  # pairs analysed per run (most repetitions first)
    realert_after: Duration = DAY


class ExfilParams(DetectorParams):
    """Outbound bytes to external destinations far above the host's baseline; first-seen large uploads."""

    score: float = Field(default=6.0, gt=0)
    ratio: float = Field(default=10.0, ge=1)  # and this multiple of the host's hourly median
    min_bytes: int = Field(default=20 * 1024 * 1024, ge=1)  # smaller transfers never alert
    first_seen_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # a new destination receiving this much
    first_seen_lookback: Duration = 30 * DAY
    min_samples: int = Field(default=3, ge=1)
    weeks_kept: int = Field(default=6, ge=1, le=52)
    max_hosts: int = Field(default=20_000, ge=10)


class DnsParams(DetectorParams):
    """Tunnelling (long/random names, many sub-domains under one parent) and NXDOMAIN bursts (DGA)."""

    learning_days: float = Field(default=0.0, ge=0)
    window: Duration = HOUR
    long_name: int = Field(default=100, ge=20)  # characters in the whole name
    long_label: int = Field(default=40, ge=10)  # characters in one label
    entropy: float = Field(default=3.8, gt=0)  # bits/char of the sub-domain part
    entropy_min_length: int = Field(default=20, ge=4)  # entropy is meaningless on short strings
    min_suspicious_names: int = Field(default=5, ge=1)  # long/random names under one parent
    unique_subdomains: int = Field(default=200, ge=10)  # distinct sub-domains under one parent
    nxdomain_names: int = Field(default=50, ge=5)  # distinct NXDOMAIN names per source per window
    max_names: int = Field(default=50_000, ge=100)  # distinct names read per window
    allow_domains: list[str] = Field(default_factory=list)  # registered domains never alerted (AV lookups)
    extra_suffixes: list[str] = Field(default_factory=list)


class RarityParams(DetectorParams):
    """First-seen process/parent pairs per host, logon sources per user, logons at unusual hours."""

    learning_days: float = Field(default=7.0, ge=0)
    window: Duration = HOUR
    rare_hour_fraction: float = Field(default=0.02, ge=0, le=1)  # share of a user's logons in that hour (+/-1)
    min_logons: int = Field(default=20, ge=1)  # logons a user needs before unusual hours are judged
    max_groups: int = Field(default=5000, ge=10)  # terms size per level
    process_datasets: list[str] = Field(default_factory=lambda: ["windows.sysmon", "windows.security"])
    logon_datasets: list[str] = Field(default_factory=lambda: ["windows.security", "system.auth"])
    logon_actions: list[str] = Field(default_factory=lambda: ["logged-in", "ssh_login"])
    logon_codes: list[str] = Field(default_factory=lambda: ["4624"])


class ZonePolicyRule(Section):
    source_zone: str
    destination_zone: str
    both_directions: bool = True


class ZonePolicyParams(DetectorParams):
    """Flows between zones the policy forbids, and hosts seen in two zones that must be separate."""

    learning_days: float = Field(default=0.0, ge=0)
    window: Duration = HOUR
    forbidden: list[ZonePolicyRule] = Field(
        default_factory=lambda: [ZonePolicyRule(source_zone="party-wan", destination_zone="internet")]
    )
    allow_destinations: list[str] = Field(default_factory=list)  # sanctioned gateways (CIDRs)
    max_destinations: int = Field(default=5000, ge=10)


DETECTOR_PARAMS: dict[str, type[DetectorParams]] = {
    "volume": VolumeParams,
    "fanout": FanoutParams,
    "beacon": BeaconParams,
    "exfil": ExfilParams,
    "dns": DnsParams,
    "rarity": RarityParams,
    "zone_policy": ZonePolicyParams,
}


class AnomalySettings(Section):
    enabled: bool = True
    interval: Duration = 300.0  # how often a detection cycle runs
    # A window is judged this long after it ends, so late batches from agents are in the store.
    settle: Duration = 600.0
    initial_lookback: Duration = 7 * DAY  # first start: baseline detectors learn from this much history
    initial_recent: Duration = 3 * HOUR  # first start: threshold detectors (scans, DNS, policy) judge this much
    max_catchup_windows: int = Field(default=300, ge=1)  # windows per detector per cycle when behind
    timezone: str = "Asia/Ho_Chi_Minh"  # office hours are local
    workdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    external_zones: list[str] = Field(default_factory=lambda: ["internet"])
    flow_datasets: list[str] = Field(default_factory=lambda: ["network_traffic.flow", "netflow.flow"])
    dns_datasets: list[str] = Field(default_factory=lambda: ["network_traffic.dns"])
    evidence_events: int = Field(default=5, ge=0, le=100)  # sample event ids attached to an alert
    state_path: Path | None = None  # default: <data_dir>/collector/anomaly.db
    volume: VolumeParams = Field(default_factory=VolumeParams)
    fanout: FanoutParams = Field(default_factory=FanoutParams)
    beacon: BeaconParams = Field(default_factory=BeaconParams)
    exfil: ExfilParams = Field(default_factory=ExfilParams)
    dns: DnsParams = Field(default_factory=DnsParams)
    rarity: RarityParams = Field(default_factory=RarityParams)
    zone_policy: ZonePolicyParams = Field(default_factory=ZonePolicyParams)
    # site code -> detector name -> parameter overrides
    sites: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_sites(self) -> AnomalySettings:
        for site, detectors in self.sites.items():
            for name, params in detectors.items():
                if name not in DETECTOR_PARAMS:
                    raise ValueError(f"sites.{site}: unknown detector {name!r} (one of {', '.join(DETECTOR_PARAMS)})")
                merge_params(self.params(name), params)
        return self

    def params(self, detector: str) -> DetectorParams:
        value: DetectorParams = getattr(self, detector)
        return value


def merge_params(base: DetectorParams, override: dict[str, Any]) -> DetectorParams:
    """``base`` with ``override`` applied and validated (unknown keys and bad values raise)."""
    return type(base).model_validate({**base.model_dump(), **override})
