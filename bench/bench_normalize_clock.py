"""What the clock-skew check adds to Normalize, per event (the processor is on every event's path).

    .venv/bin/python bench/bench_normalize_clock.py

Runs Normalize over the same batches three ways: without the check (the loop as it was before the
check, as a subclass here), with it on in-window events (the normal case: two string comparisons),
and with it on events that are all skewed (the rare case: a parse and a tag each). CPU time per
event from time.process_time, best of several rounds so a loaded machine does not inflate it.
"""

from __future__ import annotations

import copy
import os
import time
from datetime import UTC, datetime, timedelta

from collector.pipeline.normalize import Normalize
from soc_common.ecs import Event, add_tag, iso, new_event, put

BATCH = 1000
ROUNDS = 7


class NormalizeWithoutClockCheck(Normalize):
    """The process loop before the check, for the baseline."""

    def process(self, events: list[Event]) -> list[Event]:
        ingested = iso(datetime.now(UTC))
        for event in events:
            try:
                self._one(event, ingested)
            except (RecursionError, ValueError, TypeError) as exc:
                self.errors += 1
                add_tag(event, "normalize_error")
                put(event, "soc.parse_error", f"normalize: {type(exc).__name__}")
        return events


def batch(offset: timedelta) -> list[Event]:
    out = []
    for i in range(BATCH):
        event = new_event(dataset="system.auth", event_id=f"bench-{i}")
        event["@timestamp"] = iso(datetime.now(UTC) + offset)
        event["message"] = f"Failed password for user{i} from 10.9.0.{i % 250} port 51234 ssh2"
        event["host"] = {"name": "pc-01", "ip": ["10.1.0.5"]}
        out.append(event)
    return out


def cpu_us_per_event(processor: Normalize, template: list[Event]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        events = copy.deepcopy(template)
        start = time.process_time()
        processor.process(events)
        best = min(best, time.process_time() - start)
    return best / len(template) * 1e6


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    print(f"{os.cpu_count()} cores, {cpu_model()}, load {os.getloadavg()[0]:.2f}; {BATCH} events x best of {ROUNDS}")
    normal, skewed = batch(timedelta(0)), batch(timedelta(hours=1))
    base = cpu_us_per_event(NormalizeWithoutClockCheck(), normal)
    rows = [
        ("without the check", base),
        ("with the check, events in window", cpu_us_per_event(Normalize(), normal)),
        ("with the check, every event 1 h ahead", cpu_us_per_event(Normalize(), skewed)),
    ]
    print("| variant | CPU µs/event | added µs/event |")
    print("|---|---:|---:|")
    for name, value in rows:
        print(f"| {name} | {value:.2f} | {value - base:+.2f} |")


if __name__ == "__main__":
    main()
