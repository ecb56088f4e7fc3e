"""Triage: incidents, flaws and work items ranked into one queue of regions to work on.

Items that call for the same kind of correction (a keep-out zone: collisions, keep-out and
incident-region flaws, geofence flaws, incidents; a speed limit: LIMIT flaws; review by an
operator: work items) are clustered when they lie within ``cluster_radius`` of each other (single
linkage), and each cluster is one queue item scored by

    score = severity (its worst member) * (1 + log2(recurrence: members)) * proximity,
    proximity = 1 / (1 + distance to the nearest place the robot operates / proximity_scale)

(1 when no such places are given). The queue is ordered by score, best first, then by family and
position, so the same input gives the same queue.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree

from flywheel.agents.red_team import Flaw
from flywheel.agents.work import WorkItem
from flywheel.audit.incident import Severity
from flywheel.settings import check_bounds, setting
from flywheel.verify.verifier import IncidentRegion, VerifyReason


class ItemKind(enum.Enum):
    INCIDENT = 'incident'
    FLAW = 'flaw'
    WORK = 'work'


class Family(enum.Enum):
    """What kind of correction a queue item calls for."""

    KEEP_OUT = 'keep_out'
    SPEED = 'speed'
    REVIEW = 'review'


# (Two tables: both enums are IntEnums, whose members hash as their numbers.)
INCIDENT_SEVERITY = {Severity.COLLISION: 3.0, Severity.NEAR_MISS: 2.0}
FLAW_SEVERITY = {VerifyReason.COLLISION: 3.0, VerifyReason.KEEP_OUT: 2.5,
                 VerifyReason.INCIDENT_REGION: 2.5, VerifyReason.GEOFENCE: 2.0,
                 VerifyReason.LIMIT: 1.5}
WORK_SEVERITY = 1.0


@dataclass(frozen=True)
class TriageConfig:
    cluster_radius: float = setting(0.75, 'Items closer than this (m) are one region of work.',
                                    lo=0.0, hi=1000.0)
    proximity_scale: float = setting(2.0, 'Distance (m) from where the robot operates at which '
                                     'an item counts half.', lo=1e-6, hi=1e6)

    def __post_init__(self):
        check_bounds(self)


@dataclass(frozen=True)
class Member:
    kind: ItemKind
    ident: str
    x: float
    y: float
    severity: float
    family: Family
    flaw: Flaw | None = None
    incident: IncidentRegion | None = None
    work: WorkItem | None = None


@dataclass(frozen=True)
class QueueItem:
    rank: int
    score: float
    family: Family
    x: float                   # the members' centroid (NaN for an unlocated work item)
    y: float
    severity: float
    recurrence: int
    proximity: float
    members: tuple[Member, ...]

    @property
    def flaws(self) -> tuple[Flaw, ...]:
        return tuple(m.flaw for m in self.members if m.flaw is not None)

    @property
    def incidents(self) -> tuple[IncidentRegion, ...]:
        return tuple(m.incident for m in self.members if m.incident is not None)

    def to_doc(self) -> dict:
        kinds = {}
        for m in self.members:
            kinds[m.kind.value] = kinds.get(m.kind.value, 0) + 1
        return {'rank': self.rank, 'score': round(self.score, 6), 'family': self.family.value,
                'x': _plain(self.x), 'y': _plain(self.y), 'severity': self.severity,
                'recurrence': self.recurrence, 'proximity': round(self.proximity, 6),
                'members': kinds, 'ids': [m.ident for m in self.members[:20]]}


def members(incidents: Iterable = (), flaws: Iterable[Flaw] = (),
            work: Iterable[WorkItem] = ()) -> list[Member]:
    """Everything to triage as members; INFO incidents carry no work."""
    out = []
    for incident in incidents:
        region = incident if isinstance(incident, IncidentRegion) else IncidentRegion.of(incident)
        if region is not None:
            out.append(Member(ItemKind.INCIDENT, region.incident_id, region.x, region.y,
                              INCIDENT_SEVERITY[region.severity], Family.KEEP_OUT, incident=region))
    for flaw in flaws:
        family = Family.SPEED if flaw.reason is VerifyReason.LIMIT else Family.KEEP_OUT
        out.append(Member(ItemKind.FLAW, flaw.case.id, flaw.x, flaw.y, FLAW_SEVERITY[flaw.reason],
                          family, flaw=flaw))
    for item in work:
        out.append(Member(ItemKind.WORK, f'{item.signal.value}:{item.region}', item.x, item.y,
                          WORK_SEVERITY, Family.REVIEW, work=item))
    return out


def triage(incidents: Iterable = (), flaws: Iterable[Flaw] = (), work: Iterable[WorkItem] = (),
           near: Iterable[tuple[float, float]] = (),
           config: TriageConfig | None = None) -> tuple[QueueItem, ...]:
    """The queue, best first; ``near``: places the robot operates (e.g. the basin's starts)."""
    config = config if config is not None else TriageConfig()
    near = np.asarray(list(near), dtype=np.float64).reshape(-1, 2)
    near_tree = STRtree(shapely.points(near)) if len(near) else None
    items = []
    everything = members(incidents, flaws, work)
    for family in Family:
        group = [m for m in everything if m.family is family]
        located = [m for m in group if math.isfinite(m.x) and math.isfinite(m.y)]
        clusters = _clusters(located, config.cluster_radius)
        clusters += [[m] for m in group if not (math.isfinite(m.x) and math.isfinite(m.y))]
        for cluster in clusters:
            xs = [m.x for m in cluster if math.isfinite(m.x)]
            ys = [m.y for m in cluster if math.isfinite(m.y)]
            x = sum(xs) / len(xs) if xs else math.nan
            y = sum(ys) / len(ys) if ys else math.nan
            proximity = 1.0
            if near_tree is not None and xs:
                _, distance = near_tree.query_nearest(shapely.Point(x, y), return_distance=True)
                proximity = 1.0 / (1.0 + float(distance[0]) / config.proximity_scale)
            severity = max(m.severity for m in cluster)
            score = severity * (1.0 + math.log2(len(cluster))) * proximity
            items.append((score, family.value, x, y, severity, len(cluster), proximity,
                          tuple(cluster)))
    items.sort(key=lambda i: (-i[0], i[1], _key(i[2]), _key(i[3])))
    return tuple(QueueItem(rank, score, Family(family), x, y, severity, recurrence, proximity,
                           cluster)
                 for rank, (score, family, x, y, severity, recurrence, proximity, cluster)
                 in enumerate(items, 1))


def _clusters(located: list[Member], radius: float) -> list[list[Member]]:
    """Single-linkage clusters of members within ``radius`` (union-find over the close pairs)."""
    if not located:
        return []
    points = shapely.points(np.array([(m.x, m.y) for m in located]))
    left, right = STRtree(points).query(points, predicate='dwithin', distance=radius)
    parent = list(range(len(located)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for a, b in zip(left.tolist(), right.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[Member]] = {}
    for i, m in enumerate(located):
        groups.setdefault(root(i), []).append(m)
    return list(groups.values())


def _key(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _plain(value: float):
    return value if math.isfinite(value) else None
