"""Monitor: rolling statistics over the ledger's decisions, signals, escalations and incidents,
per zone and per grid cell, and the work items they call for.

Input is what the ledger holds (flywheel.audit.query.records: dicts with ``kind`` and
``stamp_ns``); only the window ``(now - window_s, now]`` counts, so a scan at a later ``now``
rolls forward. A decision counts in region ``all``, in every zone its verdict's evidence names and
in every grid cell where that evidence lies; an incident in ``all`` and in its cell. A rate raises
a WorkItem when it reaches its threshold, and shares of decisions only over at least
``min_decisions`` decisions (a handful of stops is no rate). Pure: records and ``now`` are passed
in.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from flywheel.agents.work import Signal, WorkItem
from flywheel.settings import check_bounds, setting
from flywheel.signals import EvidenceKind

# Evidence kinds whose rule_id is a zone of the spec.
_ZONE_KINDS = {EvidenceKind.COLLISION, EvidenceKind.KEEP_OUT, EvidenceKind.CLEARANCE,
               EvidenceKind.SPEED_ZONE}
_STOPS = {'BLOCK', 'FALLBACK'}
_VERIFIED = {'VERIFIED_SAFE'}
_UNVERIFIED = {'VERIFIED_UNSAFE', 'VERIFY_TIMEOUT'}


@dataclass(frozen=True)
class MonitorConfig:
    window_s: float = setting(600.0, 'Statistics cover this many seconds up to now.', lo=1.0,
                              hi=30 * 86400.0)
    cell_size: float = setting(2.0, 'Side (m) of the grid cells incidents and evidence are '
                               'counted in.', lo=0.1, hi=1000.0)
    incident_rate: float = setting(0.2, 'Incidents per minute in one cell that raise work.',
                                   lo=0.0, hi=1e6)
    escalation_rate: float = setting(0.1, "Share of a region's decisions escalated that raises "
                                     'work.', lo=0.0, hi=1.0)
    stop_rate: float = setting(0.25, "Share of a region's decisions stopped (BLOCK, FALLBACK) "
                               'that raises work.', lo=0.0, hi=1.0)
    unverified_rate: float = setting(0.5, 'Share of verified escalations the verifier did not '
                                     'clear (unsafe, or no answer in time) that raises work.',
                                     lo=0.0, hi=1.0)
    min_decisions: int = setting(20, 'Decisions a region needs before its shares count.', lo=1,
                                 hi=10**9)

    def __post_init__(self):
        check_bounds(self)


@dataclass(frozen=True)
class RegionStats:
    region: str
    x: float
    y: float
    decisions: int = 0
    actions: dict = field(default_factory=dict)    # action name -> decisions
    escalations: int = 0
    stops: int = 0
    verified: int = 0                              # escalations the verifier cleared ...
    unverified: int = 0                            # ... and did not
    incidents: int = 0
    min_clearance: float = math.inf
    mean_safety_score: float = math.nan


@dataclass(frozen=True)
class MonitorReport:
    since_ns: int
    until_ns: int
    decisions: int
    incidents: int
    regions: tuple[RegionStats, ...]
    work: tuple[WorkItem, ...]


class _Tally:
    def __init__(self, region: str, x: float, y: float):
        self.region, self.x, self.y = region, x, y
        self.decisions = self.escalations = self.stops = 0
        self.verified = self.unverified = self.incidents = 0
        self.actions: dict[str, int] = {}
        self.clearance = math.inf
        self.scores: list[float] = []
        self.incident_ids: list[str] = []
        self.incident_xy: list[tuple[float, float]] = []
        self.escalated_ids: list[str] = []
        self.stopped_ids: list[str] = []
        self.unverified_ids: list[str] = []

    def stats(self) -> RegionStats:
        return RegionStats(self.region, self.x, self.y, self.decisions, dict(self.actions),
                           self.escalations, self.stops, self.verified, self.unverified,
                           self.incidents, self.clearance,
                           sum(self.scores) / len(self.scores) if self.scores else math.nan)


class Monitor:
    def __init__(self, config: MonitorConfig | None = None):
        self.config = config if config is not None else MonitorConfig()

    def scan(self, records: Iterable[dict], now_ns: int) -> MonitorReport:
        """Statistics of the window ending at ``now_ns`` and the work they raise."""
        since = now_ns - round(self.config.window_s * 1e9)
        tallies: dict[str, _Tally] = {}
        decisions = incidents = 0
        for record in records:
            stamp = record.get('stamp_ns')
            if not isinstance(stamp, int) or not since < stamp <= now_ns:
                continue
            if record.get('kind') == 'decision':
                decisions += 1
                self._decision(record, tallies)
            elif record.get('kind') == 'incident':
                if self._incident(record, tallies):
                    incidents += 1
        regions = tuple(t.stats() for t in sorted(tallies.values(), key=lambda t: t.region))
        return MonitorReport(since, now_ns, decisions, incidents, regions,
                             tuple(self._work(tallies)))

    # -- counting -------------------------------------------------------------------------------

    def _tally(self, tallies: dict, region: str, x=math.nan, y=math.nan) -> _Tally:
        if region not in tallies:
            tallies[region] = _Tally(region, x, y)
        return tallies[region]

    def _cell(self, x: float, y: float) -> tuple[str, float, float]:
        size = self.config.cell_size
        col, row = math.floor(x / size), math.floor(y / size)
        return f'cell:{col},{row}', (col + 0.5) * size, (row + 0.5) * size

    def _decision(self, record: dict, tallies: dict) -> None:
        action = str(record.get('action', ''))
        reasons = {str(r) for r in record.get('reasons') or ()}
        signals = record.get('signals') if isinstance(record.get('signals'), dict) else {}
        regions = {('all', math.nan, math.nan)}
        for item in signals.get('evidence') or ():
            if not isinstance(item, dict):
                continue
            x, y = _number(item.get('x')), _number(item.get('y'))
            if item.get('kind') in {k.value for k in _ZONE_KINDS} and item.get('rule_id'):
                regions.add((f'zone:{item["rule_id"]}', math.nan, math.nan))
            if math.isfinite(x) and math.isfinite(y):
                regions.add(self._cell(x, y))
        pid = str(record.get('proposal_id', ''))
        for region, x, y in regions:
            t = self._tally(tallies, region, x, y)
            t.decisions += 1
            t.actions[action] = t.actions.get(action, 0) + 1
            if action == 'ESCALATE':
                t.escalations += 1
                t.escalated_ids.append(pid)
            if action in _STOPS:
                t.stops += 1
                t.stopped_ids.append(pid)
            if reasons & _VERIFIED:
                t.verified += 1
            if reasons & _UNVERIFIED:
                t.unverified += 1
                t.unverified_ids.append(pid)
            clearance = _number(signals.get('min_clearance'))
            if not math.isnan(clearance):
                t.clearance = min(t.clearance, clearance)
            score = _number(signals.get('safety_score'))
            if math.isfinite(score):
                t.scores.append(score)

    def _incident(self, record: dict, tallies: dict) -> bool:
        x, y = _number(record.get('x')), _number(record.get('y'))
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        ident = str(record.get('incident_id', ''))
        for region, cx, cy in (('all', math.nan, math.nan), self._cell(x, y)):
            t = self._tally(tallies, region, cx, cy)
            t.incidents += 1
            t.incident_ids.append(ident)
            t.incident_xy.append((x, y))
        return True

    # -- thresholds -----------------------------------------------------------------------------

    def _work(self, tallies: dict) -> list[WorkItem]:
        c = self.config
        minutes = c.window_s / 60.0
        work = []
        for t in sorted(tallies.values(), key=lambda t: t.region):
            if t.region.startswith('cell:') and t.incidents:
                rate = t.incidents / minutes
                if rate >= c.incident_rate:
                    xs, ys = zip(*t.incident_xy)
                    work.append(WorkItem(Signal.INCIDENT_RATE, t.region, rate, c.incident_rate,
                                         t.incidents, sum(xs) / len(xs), sum(ys) / len(ys),
                                         _ids(t.incident_ids),
                                         f'{t.incidents} incidents in {c.window_s:g} s'))
            if t.decisions >= c.min_decisions:
                for signal, count, threshold, ids in (
                        (Signal.ESCALATION_RATE, t.escalations, c.escalation_rate,
                         t.escalated_ids),
                        (Signal.STOP_RATE, t.stops, c.stop_rate, t.stopped_ids)):
                    rate = count / t.decisions
                    if count and rate >= threshold:
                        work.append(WorkItem(signal, t.region, rate, threshold, count, t.x, t.y,
                                             _ids(ids), f'{count} of {t.decisions} decisions'))
            checked = t.verified + t.unverified
            if checked >= c.min_decisions and t.unverified / checked >= c.unverified_rate:
                work.append(WorkItem(Signal.UNVERIFIED_RATE, t.region, t.unverified / checked,
                                     c.unverified_rate, t.unverified, t.x, t.y,
                                     _ids(t.unverified_ids),
                                     f'{t.unverified} of {checked} verifications not cleared'))
        return work


def _ids(ids: list[str]) -> tuple[str, ...]:
    return tuple(ids[-WorkItem.MAX_EVIDENCE:])


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)
