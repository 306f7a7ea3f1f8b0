"""Rarity: first-seen process/parent pairs per host, first-seen logon source per user, logons at
unusual hours for that user.

First-seen sets live in the state's ``seen`` table, one row per (entity, item). An entity only
alerts once it has been observed for ``learning_days`` (the first observation time is stored with
the set), so a newly enrolled host teaches the detector its normal programs instead of raising
hundreds of alerts. Pairs are read with nested terms aggregations (parent, then child, then host)
bounded by ``max_groups`` per level. Logon hours are a per-user histogram of local hours; an hour
(with its neighbours) holding under ``rare_hour_fraction`` of the user's logons is unusual.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window, span, windows_at
from collector.anomaly.settings import DetectorParams, RarityParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import local_slot
from collector.store.base import Filter, Term
from soc_common.ecs import iso, parse_ts


class RarityDetector(Detector):
    name = "rarity"
    learns_from_history = True

    def window_seconds(self, params: DetectorParams) -> float:
        assert isinstance(params, RarityParams)
        return params.window

    def hot_windows(self, ctx: RunContext, scope: Scope, windows: Sequence[Window]) -> list[Window]:
        """Windows holding any process or logon event (first-seen sets learn from all of them)."""
        p = scope.params
        assert isinstance(p, RarityParams)
        start, end, step = span(windows)
        hot: set[datetime] = set()
        for filters in [self._process_base(p, scope), *self._logon_filters(p, scope)]:
            hot |= set(ctx.histogram(filters, start, end, step))
        return windows_at(windows, hot)

    @staticmethod
    def _process_base(p: RarityParams, scope: Scope) -> tuple[Filter, ...]:
        return (Term("event.dataset", p.process_datasets), *scope.filters())

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, RarityParams)
        findings = self._process_pairs(ctx, scope, p, start, end, tx)
        findings += self._logons(ctx, scope, p, start, end, tx)
        return findings

    def _mature(self, ctx: RunContext, tx: StateTx, key: str, at: datetime, learning_days: float) -> bool:
        """Whether ``key``'s entity was first observed at least ``learning_days`` before ``at``; records it."""
        first = tx.kv.get(key) or ctx.state.get(self.name, key)
        if first is None:
            tx.put(key, iso(at))
            return learning_days <= 0
        return parse_ts(first) <= at - timedelta(days=learning_days)

    def _seen(self, ctx: RunContext, tx: StateTx, cache: dict[str, set[str]], entity: str) -> set[str]:
        if entity not in cache:
            cache[entity] = ctx.state.seen_items(self.name, entity)
        return cache[entity]

    def _process_pairs(
        self, ctx: RunContext, scope: Scope, p: RarityParams, start: datetime, end: datetime, tx: StateTx
    ) -> list[Finding]:
        base = self._process_base(p, scope)
        findings: list[Finding] = []
        cache: dict[str, set[str]] = {}
        for parent in ctx.terms(base, start, end, "process.parent.name", p.max_groups):
            with_parent = (*base, Term("process.parent.name", parent.key))
            for child in ctx.terms(with_parent, start, end, "process.name", p.max_groups):
                pair = f"{parent.key} -> {child.key}"
                pair_filters = (*with_parent, Term("process.name", child.key))
                for host in ctx.terms(pair_filters, start, end, "host.name", p.max_groups):
                    entity = f"proc:{scope.label}:{host.key}"
                    seen = self._seen(ctx, tx, cache, entity)
                    if pair in seen:
                        continue
                    seen.add(pair)
                    tx.add_seen(entity, pair, start)
                    if not self._mature(ctx, tx, f"first:{entity}", start, p.learning_days):
                        continue
                    findings.append(
                        self._finding(
                            "first_seen_process",
                            f"Tiến trình lần đầu xuất hiện / First-seen process pair on {host.key}: {pair}",
                            {"host.name": host.key, "pair": pair},
                            start,
                            end,
                            scope,
                            {
                                "entity": host.key,
                                "observed": pair,
                                "events": host.count,
                                "baseline": {"known_pairs": len(seen) - 1},
                                "score": 1.0,
                            },
                            (*pair_filters, Term("host.name", host.key)),
                            ("execution",),
                            ("T1059",),
                            host_name=str(host.key),
                        )
                    )
        return findings

    def _logon_filters(self, p: RarityParams, scope: Scope) -> list[tuple[Filter, ...]]:
        """Successful logons: Windows 4624 and sshd accepted logons (two shapes, no OR in the store language)."""
        win = (Term("event.dataset", "windows.security"), Term("event.code", p.logon_codes), *scope.filters())
        ssh = (
            Term("event.dataset", "system.auth"),
            Term("event.action", p.logon_actions),
            Term("event.outcome", "success"),
            *scope.filters(),
        )
        shapes = {"windows.security": win, "system.auth": ssh}
        return [f for name, f in shapes.items() if name in p.logon_datasets]

    def _logons(
        self, ctx: RunContext, scope: Scope, p: RarityParams, start: datetime, end: datetime, tx: StateTx
    ) -> list[Finding]:
        findings: list[Finding] = []
        cache: dict[str, set[str]] = {}
        weekday_hour = local_slot(start, ctx.tz)
        for base in self._logon_filters(p, scope):
            for user in ctx.terms(base, start, end, "user.name", p.max_groups):
                name = str(user.key)
                entity = f"logon:{scope.label}:{name}"
                mature = self._mature(ctx, tx, f"first:{entity}", start, p.learning_days)
                user_filters = (*base, Term("user.name", name))
                seen = self._seen(ctx, tx, cache, entity)
                for src in ctx.terms(user_filters, start, end, "source.ip", p.max_groups):
                    if str(src.key) in seen:
                        continue
                    seen.add(str(src.key))
                    tx.add_seen(entity, str(src.key), start)
                    if mature:
                        findings.append(
                            self._finding(
                                "first_seen_logon_source",
                                f"Đăng nhập từ nguồn mới / First-seen logon source for {name}: {src.key}",
                                {"user.name": name, "source.ip": src.key},
                                start,
                                end,
                                scope,
                                {
                                    "entity": name,
                                    "observed": src.key,
                                    "logons": src.count,
                                    "baseline": {"known_sources": len(seen) - 1},
                                    "score": 1.0,
                                },
                                (*user_filters, Term("source.ip", src.key)),
                                ("lateral_movement", "initial_access"),
                                ("T1078",),
                                user_name=name,
                                source_ip=str(src.key),
                            )
                        )
                hours_key = f"hours:{entity}"
                hours: list[int] = list(tx.kv.get(hours_key) or ctx.state.get(self.name, hours_key) or [0] * 24)
                hour = weekday_hour[1]
                total = sum(hours)
                nearby = hours[hour] + hours[(hour - 1) % 24] + hours[(hour + 1) % 24]
                if mature and total >= p.min_logons and nearby / total < p.rare_hour_fraction:
                    findings.append(
                        self._finding(
                            "unusual_hour_logon",
                            f"Đăng nhập giờ bất thường / Logon at an unusual hour for {name}: {hour:02d}h local",
                            {"user.name": name},
                            start,
                            end,
                            scope,
                            {
                                "entity": name,
                                "observed": {"local_hour": hour, "logons": user.count},
                                "baseline": {
                                    "logons_this_hour_and_neighbours": nearby,
                                    "logons_total": total,
                                    "fraction": round(nearby / total, 4),
                                },
                                "score": round(1 - (nearby / total) / p.rare_hour_fraction, 3)
                                if p.rare_hour_fraction
                                else 1.0,
                            },
                            user_filters,
                            ("initial_access",),
                            ("T1078",),
                            user_name=name,
                        )
                    )
                hours[hour] += user.count
                tx.put(hours_key, hours)
        return findings

    def _finding(
        self,
        rule: str,
        title: str,
        group: dict[str, Any],
        start: datetime,
        end: datetime,
        scope: Scope,
        explanation: dict[str, Any],
        evidence: tuple[Filter, ...],
        tactics: tuple[str, ...],
        techniques: tuple[str, ...],
        **who: Any,
    ) -> Finding:
        return Finding(
            rule=rule,
            title=title,
            severity="medium",
            group=group,
            timestamp=start,
            window_start=start,
            window_end=end,
            explanation={"detector": self.name, "window": {"start": iso(start), "end": iso(end)}, **explanation},
            evidence=evidence,
            tactics=tactics,
            techniques=techniques,
            site=scope.site,
            **who,
        )
