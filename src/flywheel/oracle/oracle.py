"""The Oracle: scores one proposal against an OracleSpec and returns raw SafetySignals.

It never decides and never raises on a bad proposal: a malformed proposal yields signals with every
risk at 1 and status INPUT_REJECTED, so even a Gate that trusted the Oracle blindly would stop.
Scoring is deterministic: the same spec and proposal give the same signals.

What is scored (flywheel/oracle/sweep.py holds the geometry): the footprint swept along every
trajectory segment's exact arc (twist i held from pose i), inflated by the proposal check's
kinematic tolerances because pose i+1 is only within them of that arc's end; and the command held
for the spec's command_hold from any start within the anchor tolerances of the first pose. Each
zone, limit and grid cell is checked against that whole region, not against sample points.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import shapely
from shapely import STRtree

from flywheel.kinematics import step
from flywheel.oracle.spec import CoverageGrid, OracleSpec
from flywheel.oracle.sweep import Footprint, Sweep, sweep
from flywheel.proposal import V, W, YAW, Proposal, ProposalLimits, check_proposal
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals

# A constraint's risk rises linearly from 0 at this fraction of its limit to 1 at the limit.
SOFT_FRACTION = 0.8

# Oracle._kinematics's rows, in order (their limits: max_speed, max_yaw_rate, max_curvature,
# max_acceleration).
_KINEMATIC_RULES = (('limit:max_speed', EvidenceKind.SPEED),
                    ('limit:max_yaw_rate', EvidenceKind.YAW_RATE),
                    ('limit:max_curvature', EvidenceKind.CURVATURE),
                    ('limit:max_acceleration', EvidenceKind.ACCELERATION))


@dataclass(frozen=True)
class Checked:
    """One proposal's input check and sweep, made by one Oracle and reused by another that checks
    and sweeps exactly alike (a candidate on trial beside the active release: a release usually
    changes zones, not the robot), so the pair costs one sweep. ``geometry`` names what both
    depend on; an Oracle uses a Checked only if it names the same and is of the same proposal."""

    geometry: tuple
    proposal: Proposal
    defects: tuple
    swept: Sweep | None         # None when there are defects
    cost_ns: int = 0            # what making it took, set by whoever timed it

    def fits(self, oracle: 'Oracle', proposal: Proposal) -> bool:
        return self.proposal is proposal and self.geometry == oracle.geometry


def ramp(ratio: float) -> float:
    """Risk of a value at ``ratio`` times its limit."""
    return min(1.0, max(0.0, (float(ratio) - SOFT_FRACTION) / (1.0 - SOFT_FRACTION)))


class Oracle:
    """Scores proposals with one spec; build a new Oracle to change spec (the swap is atomic).

    The command hold: the Gate executes only the command, for at most scored_hold, from wherever
    the robot is (within the anchor tolerances of the first pose). A start yaw error d rotates the
    whole hold arc about the start, moving a point at distance r from it by at most r*d, and
    r <= footprint radius + |v|*command_hold; so the hold sweep is inflated by anchor_tolerance +
    anchor_yaw_tolerance * (radius + |v|*command_hold) on top of its chord bound. A DEGRADE that
    executes k*(v, w) with 0 < k <= 1 drives the same arc more slowly: after T <= command_hold it is
    where (v, w) is after k*T, inside the same sweep. Its speed-zone and speed limits are then
    checked at the undegraded speed, which is conservative.
    """

    def __init__(self, spec: OracleSpec, limits: ProposalLimits):
        self.spec = spec
        # A trajectory must last as long as the hold it is scored for.
        self.limits = replace(limits, min_horizon=max(limits.min_horizon, spec.command_hold))
        self._zones = spec.obstacles + spec.keep_out
        self._zone_kind = ([EvidenceKind.COLLISION] * len(spec.obstacles)
                           + [EvidenceKind.KEEP_OUT] * len(spec.keep_out))
        self._zone_index = (_ZoneIndex(np.array([z.polygon for z in self._zones], dtype=object),
                                       spec.limits.clearance_horizon,
                                       spec.limits.clearance_margin) if self._zones else None)
        # A convex polygon holds a convex hull iff it holds the hull's vertices: a cheap test.
        self._fence = _HalfPlanes.of(spec.geofence) if spec.geofence is not None else None
        if spec.geofence is not None:
            shapely.prepare(spec.geofence)
        self._validated = _HalfPlanes.of(spec.uncertainty.validated_region)
        shapely.prepare(spec.uncertainty.validated_region)
        self._coverage = _CoverageIndex(spec.coverage)
        self._speed_polygons = np.array([z.polygon for z in spec.speed_zones], dtype=object)
        shapely.prepare(self._speed_polygons[shapely.get_num_coordinates(self._speed_polygons)
                                             > _ZoneIndex.PREPARED])
        self._speed_tree = STRtree(self._speed_polygons) if spec.speed_zones else None
        # A hull adds risk in a zone only above this speed (ramp; any speed over a 0 limit),
        # lowered by a relative 1e-9 so that no rounding of value / limit escapes it.
        self._speed_floor = np.array([SOFT_FRACTION * z.max_speed * (1.0 - 1e-9)
                                      for z in spec.speed_zones])
        self._kinematic_limits = np.array([spec.limits.max_speed, spec.limits.max_yaw_rate,
                                           spec.limits.max_curvature,
                                           spec.limits.max_acceleration])
        self._footprint = Footprint.of(spec.footprint)
        # Pose i+1 may lie kinematic_tolerance (m) and kinematic_yaw_tolerance (rad) off the end
        # of arc i: the jump between them stays within this of the swept placements.
        self._segment_margin = (self.limits.kinematic_tolerance
                                + self.limits.kinematic_yaw_tolerance * self._footprint.radius)
        # Everything check() and swept() read: equal tuples check and sweep every proposal alike.
        self.geometry = (self.limits, shapely.to_wkb(spec.footprint), spec.command_hold,
                         spec.anchor_tolerance, spec.anchor_yaw_tolerance, spec.sweep_tolerance)

    def check(self, proposal: Proposal) -> Checked:
        """The input check and, for a well-formed proposal, its sweep."""
        defects = tuple(check_proposal(proposal, self.limits))
        return Checked(self.geometry, proposal, defects,
                       None if defects else self.swept(proposal))

    def evaluate(self, proposal: Proposal, checked: Checked | None = None) -> SafetySignals:
        """The proposal's signals; ``checked``, if it fits this Oracle, saves checking and
        sweeping again (one that does not fit is ignored)."""
        if checked is None or not checked.fits(self, proposal):
            checked = self.check(proposal)
        if checked.defects:
            return self.rejected(proposal, [f'input:{d.name.lower()}' for d, _ in checked.defects])
        evidence: list[Evidence] = []
        swept = checked.swept
        # |v| of the trajectory's twists, then of the command
        speeds = np.abs(np.append(proposal.states[:, V], proposal.command[0]))
        collision, clearance, ttc, omitted = self._collision(swept, evidence)
        constraint = max(self._kinematics(proposal, evidence),
                         self._speed_zones(swept, evidence),
                         self._geofence(swept, evidence))
        u, c_a = self._uncertainties(proposal, swept, speeds, evidence)
        evidence.sort(key=lambda e: -e.severity)
        status = EvidenceStatus.COMPLETE if evidence else EvidenceStatus.NONE
        if omitted or len(evidence) > self.spec.max_evidence:
            evidence, status = evidence[:self.spec.max_evidence], EvidenceStatus.TRUNCATED
        return self._signals(proposal, collision, constraint, clearance, ttc, u, c_a,
                             tuple(evidence), status)

    def with_coverage(self, coverage: CoverageGrid, overlay_version: str) -> 'Oracle':
        """This Oracle with another audit-coverage grid (governance's coverage overlay applied
        to the release's), reported as ``overlay_version``; everything else is shared."""
        other = copy.copy(self)
        other.spec = replace(self.spec, coverage=coverage, overlay_version=overlay_version)
        other._coverage = _CoverageIndex(coverage)
        return other

    def swept(self, proposal: Proposal) -> Sweep:
        """The scored region of a well-formed proposal of N points: segments 0..N-2 are the
        trajectory's (twist i from pose i to pose i+1), segment N is the command held for
        command_hold from the first pose (its end pose N+1 is the exact arc end)."""
        spec, states, t_ns = self.spec, proposal.states, proposal.t_ns
        n = len(states)
        v, w = proposal.command
        x, y, yaw = states[0, :YAW + 1].tolist()
        poses = np.concatenate((states[:, :YAW + 1],
                                [(x, y, yaw), step(x, y, yaw, v, w, spec.command_hold)]))
        twists = np.concatenate((states[:, V:W + 1], [(v, w), (0.0, 0.0)]))
        durations = np.concatenate((np.diff(t_ns) * 1e-9, (0.0, spec.command_hold, 0.0)))
        times = np.concatenate((t_ns * 1e-9, (0.0, 0.0)))
        margins = np.full(n + 2, self._segment_margin)
        margins[n] = (spec.anchor_tolerance
                      + spec.anchor_yaw_tolerance * (self._footprint.radius
                                                     + abs(v) * spec.command_hold))
        return sweep(poses, twists, durations, times, margins,
                     np.concatenate((np.arange(n - 1), (n,))), self._footprint,
                     spec.sweep_tolerance)

    def rejected(self, proposal: Proposal, rule_ids: list[str]) -> SafetySignals:
        """Signals that score nothing and stop everything: every risk 1, status INPUT_REJECTED."""
        evidence = tuple(Evidence(rule_id, EvidenceKind.INPUT, 0.0) for rule_id in rule_ids)
        return self._signals(proposal, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, evidence,
                             EvidenceStatus.INPUT_REJECTED)

    def shed(self, proposal: Proposal) -> SafetySignals:
        """Signals for a proposal the Oracle had no time to score: every risk 1, status SHED, no
        evidence. Nothing is checked or swept (only the digest is computed, to name the
        proposal), so shedding stays cheap under the overload that calls for it."""
        return self._signals(proposal, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, (), EvidenceStatus.SHED)

    def _signals(self, proposal, collision, constraint, clearance, ttc, u, c_a, evidence, status):
        spec = self.spec
        return SafetySignals(
            proposal_id=proposal.proposal_id, proposal_digest=proposal.digest,
            oracle_version=spec.version, overlay_version=spec.overlay_version, stamp_ns=0,
            safety_score=1.0 - max(collision, constraint), collision_risk=collision,
            constraint_risk=constraint, min_clearance=clearance, time_to_collision=ttc,
            prediction_uncertainty=u, prediction_uncertainty_threshold=spec.uncertainty.threshold,
            coverage_uncertainty=c_a, coverage_uncertainty_threshold=spec.coverage.threshold,
            evidence_status=status, evidence=evidence, scored_hold=spec.command_hold,
            anchor_tolerance=spec.anchor_tolerance,
            anchor_yaw_tolerance=spec.anchor_yaw_tolerance)

    def _collision(self, swept: Sweep, evidence: list) -> tuple[float, float, float, bool]:
        """(collision_risk, min_clearance, time_to_collision, evidence omitted) of the swept
        region; the time is that of the earliest hull touching a zone, along the trajectory or
        along the hold.

        Contact: one COLLISION or KEEP_OUT item per zone touched, in spec order, at most
        max_evidence of them (the flag says more were touched): the overlap of the zone with the
        first hull touching it, its area and centroid. Otherwise the exact distance to the
        nearest zone up to clearance_horizon, and one CLEARANCE item when it is under
        clearance_margin: that zone, at the point of the swept region nearest it.
        """
        if self._zone_index is None:
            return 0.0, math.inf, math.inf, False
        near = self._zone_index.measure(swept, self.spec.max_evidence)
        if not len(near.zones):
            if near.gap > self.spec.limits.clearance_horizon:
                return 0.0, math.inf, math.inf, False
            risk = max(0.0, 1.0 - near.gap / self.spec.limits.clearance_margin)
            if risk > 0.0:
                x, y = near.where
                evidence.append(Evidence(self._zones[near.nearest].zone_id,
                                         EvidenceKind.CLEARANCE, near.gap, x, y, risk))
            return risk, near.gap, math.inf, False
        hulls, zones = swept.hulls[near.hulls], self._zone_index.polygons[near.zones]
        overlap = shapely.intersection(hulls, zones)
        centre = shapely.get_coordinates(shapely.centroid(
            np.where(shapely.is_empty(overlap), hulls, overlap)))
        for z, area, (x, y) in zip(near.zones.tolist(), shapely.area(overlap).tolist(),
                                   centre.tolist()):
            evidence.append(Evidence(self._zones[z].zone_id, self._zone_kind[z], area, x, y, 1.0))
        return 1.0, 0.0, near.time, near.omitted

    def _kinematics(self, proposal: Proposal, evidence: list) -> float:
        """Risk from speed, yaw rate, curvature and acceleration.

        The command is executed first, so it is checked like a sample at the first pose (its
        value counts where it is larger than every sample's). Curvature |w/v| counts only above
        curvature_min_speed; the acceleration over segment k is placed at its end, point k+1.
        """
        limits, states, n = self.spec.limits, proposal.states, len(proposal.states)
        v, w = abs(proposal.command[0]), abs(proposal.command[1])
        table = np.zeros((len(_KINEMATIC_RULES), n + 1))   # one row per rule; the command last
        np.abs(states[:, V:W + 1].T, out=table[:2, :n])
        table[:2, n] = v, w
        speed = table[0, :n]
        table[2, :n] = np.where(speed > limits.curvature_min_speed,
                                table[1, :n] / np.maximum(speed, 1e-12), 0.0)
        if v > limits.curvature_min_speed:
            table[2, n] = w / v
        if n > 1:
            table[3, 1:n] = np.abs(np.diff(states[:, V]) / (np.diff(proposal.t_ns) * 1e-9))
        worst = table.argmax(axis=1)
        value = table[np.arange(len(table)), worst]
        risk = np.minimum(1.0, np.maximum(0.0, (value / self._kinematic_limits - SOFT_FRACTION)
                                          / (1.0 - SOFT_FRACTION)))
        for k in np.flatnonzero(risk > 0.0).tolist():
            i = int(worst[k]) if worst[k] < n else 0
            rule_id, kind = _KINEMATIC_RULES[k]
            evidence.append(Evidence(rule_id, kind, float(value[k]), float(states[i, 0]),
                                     float(states[i, 1]), float(risk[k])))
        return float(risk.max())

    def _speed_zones(self, swept: Sweep, evidence: list) -> float:
        """Risk from speed-limit zones: a zone applies to every swept hull touching it, at the
        largest speed of the steps that hull covers (the command's along the hold), so crossing a
        zone between two samples outside it counts. Only pairs of a hull and a zone it may add
        risk in (faster than SOFT_FRACTION of the zone's limit) are tested exactly."""
        if self._speed_tree is None or not swept.speed.max() > self._speed_floor.min():
            return 0.0
        hit_hull, hit_zone = self._speed_tree.query(swept.hulls)
        fast = np.flatnonzero(swept.speed[hit_hull] > self._speed_floor[hit_zone])
        if not len(fast):
            return 0.0
        hit_hull, hit_zone = hit_hull[fast], hit_zone[fast]
        touch = shapely.intersects(self._speed_polygons[hit_zone], swept.hulls[hit_hull])
        hit_hull, hit_zone = hit_hull[touch], hit_zone[touch]
        risk = 0.0
        for z in np.unique(hit_zone):
            hits = hit_hull[hit_zone == z]
            hull = int(hits[np.argmax(swept.speed[hits])])
            value, limit = float(swept.speed[hull]), self.spec.speed_zones[z].max_speed
            r = ramp(value / limit) if limit > 0.0 else float(value > 0.0)
            if r > 0.0:
                where = swept.hulls[hull].centroid
                evidence.append(Evidence(self.spec.speed_zones[z].zone_id,
                                         EvidenceKind.SPEED_ZONE, value, where.x, where.y, r))
                risk = max(risk, r)
        return risk

    def _geofence(self, swept: Sweep, evidence: list) -> float:
        """1 when any part of the swept region leaves the geofence."""
        if self.spec.geofence is None:
            return 0.0
        if self._fence is not None:
            if self._fence.holds(swept.placements.reshape(-1, 2)).all():
                return 0.0
        elif shapely.covers(self.spec.geofence, shapely.box(*swept.extent)):
            return 0.0
        outside = ~shapely.covers(self.spec.geofence, swept.hulls)
        if not outside.any():
            return 0.0
        spill = shapely.difference(swept.hulls[int(np.argmax(outside))], self.spec.geofence)
        evidence.append(Evidence('geofence', EvidenceKind.GEOFENCE, float(spill.area),
                                 spill.centroid.x, spill.centroid.y, 1.0))
        return 1.0

    def _uncertainties(self, proposal: Proposal, swept: Sweep, speeds: np.ndarray,
                       evidence: list) -> tuple[float, float]:
        """u and c_a of the swept region, not of the samples (spec.py's UncertaintyModel and
        CoverageGrid define them): u's region part is the fraction of the vertices of every swept
        placement outside the validated region, its speed part the peak |v| (trajectory or
        command) over validated_max_speed; c_a counts every grid cell a swept hull's bounding
        box touches."""
        model = self.spec.uncertainty
        xy = swept.placements.reshape(-1, 2)
        if self._validated is not None:
            inside = self._validated.holds(xy)
        elif shapely.contains_properly(model.validated_region, shapely.box(*swept.extent)):
            inside = np.ones(len(xy), dtype=bool)
        else:
            inside = shapely.contains_xy(model.validated_region, xy[:, 0], xy[:, 1])
        region_u = 1.0 - np.count_nonzero(inside) / len(inside)
        peak = int(speeds.argmax())
        speed_u = min(1.0, max(0.0, (float(speeds[peak]) - model.validated_max_speed)
                               / model.validated_max_speed))
        u = max(region_u, speed_u)
        if u > model.threshold:
            x, y = (xy[int(np.argmin(inside))] if region_u >= speed_u
                    else proposal.states[peak if peak < len(proposal.states) else 0, :YAW])
            evidence.append(Evidence('uncertainty:validated_envelope', EvidenceKind.UNCERTAINTY,
                                     u, float(x), float(y), u))
        coverage, x, y = self._coverage.least(swept.bounds, swept.extent)
        c_a = 1.0 - coverage
        if c_a > self.spec.coverage.threshold:
            evidence.append(Evidence('coverage:audit_grid', EvidenceKind.COVERAGE, c_a, x, y, c_a))
        return u, c_a


@dataclass(frozen=True)
class _Proximity:
    """What the zone index finds for one swept region: the zones touched (``zones``, in spec
    order, at most max_evidence of them; ``omitted`` when more are), each with the first hull
    touching it (``hulls``), and the start of the first hull touching any zone (``time``); or,
    when none is touched, the distance to the nearest zone (``gap``, inf past the clearance
    horizon) and, when it is under the clearance margin, that zone (``nearest``) and the point
    of the swept region nearest it (``where``)."""

    hulls: np.ndarray
    zones: np.ndarray
    omitted: bool = False
    time: float = math.inf
    gap: float = 0.0
    nearest: int = -1
    where: tuple[float, float] = (math.nan, math.nan)


_NONE = np.zeros(0, dtype=np.int64)
_CLEAR = _Proximity(_NONE, _NONE, gap=math.inf)


class _ZoneIndex:
    """The obstacle and keep-out zones, indexed so that scoring one proposal costs what the few
    zones near its swept region cost, however many zones lie around the route (a spec may hold
    1,024 of them there, bench/release_limits.py).

    Sparse (every zone within clearance_horizon of the swept region's box meets few hulls and
    has few vertices): the tree of zone boxes grown by the horizon gives every (hull, zone) pair
    that may lie within it, and one exact distance per pair decides contact (0) and clearance.

    Dense, where that would be a loop over thousands of pairs or vertices:

    - ``boundaries``, every ring of every zone as one prepared MultiLineString: GEOS indexes its
      segments once, and the nearest points between it and the hulls come from a
      branch-and-bound over the segments of both, the exact distance between the zones'
      boundaries and the hulls' boundaries.
    - Polygons whose boundaries do not meet are disjoint, their distance that boundary distance,
      unless one holds the other: a ring of a zone inside a hull (so is its first vertex, one of
      ``anchors``), or a hull inside a zone. Consecutive hulls of a chain share a placement
      (flywheel/oracle/sweep.py), so a chain that meets no zone boundary lies wholly inside or
      wholly outside each zone: one point per chain decides.
    - When something touches: the hulls touching are those a zone boundary meets (one prepared
      intersects per hull) and the chains of the others that lie in a zone (one point each);
      the zones touched are those the hulls' boundaries meet (the hulls' rings as one prepared
      MultiLineString, one intersects per zone) or that a hull holds (anchors), asked in spec
      order in chunks that double until one more than the evidence holds is found; and only
      for those, the first hull touching each (exact intersects of the pairs whose boxes meet).
    """

    # The sparse way is taken while the hulls times the zones whose reach meets the swept
    # region's box stay under QUERY (a bound on the pairs the tree can return), and the pairs it
    # returns under PAIRS, with under VERTICES zone vertices over them.
    QUERY = 4096
    PAIRS = 1024
    VERTICES = 4096

    # Zones with more vertices than this are prepared (GEOS indexes their edges): an exact
    # predicate against one small hull costs less prepared only for big polygons.
    PREPARED = 128

    def __init__(self, polygons: np.ndarray, horizon: float, margin: float):
        self.polygons, self.horizon, self.margin = polygons, horizon, margin
        self.vertices = shapely.get_num_coordinates(polygons)
        shapely.prepare(polygons[self.vertices > self.PREPARED])
        self.bounds = shapely.bounds(polygons)
        self.tree = STRtree(polygons)
        reach = self.bounds + horizon * np.array([-1.0, -1.0, 1.0, 1.0])
        self.reach = STRtree(shapely.box(*reach.T))
        rings = shapely.get_rings(polygons)
        self.boundaries = shapely.multilinestrings(rings)
        shapely.prepare(self.boundaries)
        self.anchors = STRtree(shapely.get_point(rings, 0))
        self.first_vertex = shapely.get_coordinates(
            shapely.get_point(shapely.get_exterior_ring(polygons), 0))
        # GEOS builds the segment index on first use: here, not while scoring.
        shapely.shortest_line(self.boundaries, shapely.Point(0.0, 0.0))

    def measure(self, swept: Sweep, most: int) -> _Proximity:
        """Contact or clearance of the swept region; at most ``most`` zones touched."""
        near = len(self.reach.query(shapely.box(*swept.extent)))
        if not near:
            return _CLEAR
        if len(swept.hulls) * near <= self.QUERY:
            hull, zone = self.reach.query(swept.hulls)
            if len(hull) <= self.PAIRS and self.vertices[zone].sum() <= self.VERTICES:
                return self._pairwise(swept, hull, zone, most)
        return self._indexed(swept, most)

    def _pairwise(self, swept: Sweep, hull: np.ndarray, zone: np.ndarray,
                  most: int) -> _Proximity:
        """Pair by pair: only pairs whose boxes meet may touch (exact intersects); if none does,
        the exact distance of every pair."""
        if not len(hull):
            return _CLEAR
        hb, zb = swept.bounds[hull], self.bounds[zone]
        meet = np.flatnonzero((hb[:, 0] <= zb[:, 2]) & (zb[:, 0] <= hb[:, 2])
                              & (hb[:, 1] <= zb[:, 3]) & (zb[:, 1] <= hb[:, 3]))
        if len(meet):
            touch = meet[shapely.intersects(self.polygons[zone[meet]], swept.hulls[hull[meet]])]
            if len(touch):
                return _touches(swept, hull[touch], zone[touch], most)
        distance = shapely.distance(swept.hulls[hull], self.polygons[zone])
        gap = float(distance.min())
        if gap > self.horizon:
            return _CLEAR
        if gap >= self.margin:
            return _Proximity(_NONE, _NONE, gap=gap)
        closest = np.flatnonzero(distance == gap)
        first = closest[np.argmin(zone[closest])]
        line = shapely.shortest_line(swept.hulls[hull[first]], self.polygons[zone[first]])
        return _Proximity(_NONE, _NONE, gap=gap, nearest=int(zone[first]),
                          where=tuple(shapely.get_coordinates(line)[0].tolist()))

    def _indexed(self, swept: Sweep, most: int) -> _Proximity:
        line = shapely.shortest_line(self.boundaries, shapely.multipolygons(swept.hulls))
        gap = float(shapely.length(line))
        if gap > 0.0 and not self._holds(swept):
            if gap > self.horizon:
                return _CLEAR
            if gap >= self.margin:
                return _Proximity(_NONE, _NONE, gap=gap)
            where = shapely.get_point(line, 1)
            nearest = int(self.tree.query_nearest(where, all_matches=True).min())
            return _Proximity(_NONE, _NONE, gap=gap, nearest=nearest,
                              where=(where.x, where.y))
        touching = self._touching(swept)
        zones = self._touched(swept, most + 1) if touching.any() else _NONE
        if not len(zones):
            # The boundaries meet at a distance that rounds to 0 where no exact predicate sees
            # contact: as near as can be.
            where = shapely.get_point(line, 1)
            nearest = int(self.tree.query_nearest(where, all_matches=True).min())
            return _Proximity(_NONE, _NONE, gap=0.0, nearest=nearest, where=(where.x, where.y))
        hb, zb = swept.bounds, self.bounds[zones[:most]]
        zone, hull = np.nonzero((hb[:, 0] <= zb[:, 2, None]) & (zb[:, 0, None] <= hb[:, 2])
                                & (hb[:, 1] <= zb[:, 3, None]) & (zb[:, 1, None] <= hb[:, 3]))
        zone = zones[zone]
        missed = ~shapely.intersects(self.polygons[zone], swept.hulls[hull])
        # Each zone's first hull touching it (the exact predicates agree that one does; were
        # rounding ever to leave none, the first whose box meets it).
        key = np.lexsort((_ranks(swept)[hull], missed, zone))
        zone, hull = zone[key], hull[key]
        first = np.concatenate(([True], zone[1:] != zone[:-1]))
        return _Proximity(hull[first], zone[first], len(zones) > most,
                          float(swept.start[touching].min()))

    def _touching(self, swept: Sweep) -> np.ndarray:
        """Per hull: whether it touches a zone."""
        met = shapely.intersects(self.boundaries, swept.hulls)   # a zone boundary meets it
        if met.all():
            return met
        # The others, in runs along a chain, lie wholly inside or outside each zone.
        step = np.diff(swept.segment)
        starts = np.concatenate(([True], (step < 0) | (step > 1) | met[:-1])) & ~met
        run = np.cumsum(starts) - 1
        first = np.flatnonzero(starts)
        points = shapely.get_point(shapely.get_exterior_ring(swept.hulls[first]), 0)
        inside = np.zeros(len(first), dtype=bool)
        inside[self.tree.query(points, predicate='intersects')[0]] = True
        return met | (~met & inside[run])

    def _touched(self, swept: Sweep, count: int) -> np.ndarray:
        """The first ``count`` zones in spec order that the swept region touches: those the
        hulls' boundaries meet, and those a hull holds whole (so it holds their first vertex)."""
        near = np.sort(self.tree.query(shapely.box(*swept.extent)))
        rings = shapely.multilinestrings(shapely.get_exterior_ring(swept.hulls))
        shapely.prepare(rings)
        hb = swept.bounds
        found, total, lo, size = [], 0, 0, 64
        while lo < len(near) and total < count:
            chunk = near[lo:lo + size]
            touched = shapely.intersects(rings, self.polygons[chunk])
            x, y = self.first_vertex[chunk[~touched]].T
            hull, zone = np.nonzero((hb[:, :1] <= x) & (x <= hb[:, 2:3])
                                    & (hb[:, 1:2] <= y) & (y <= hb[:, 3:]))
            zone = zone[shapely.intersects_xy(swept.hulls[hull], x[zone], y[zone])]
            touched[np.flatnonzero(~touched)[zone]] = True
            found.append(chunk[touched])
            total, lo, size = total + len(found[-1]), lo + size, size * 2
        return np.concatenate(found)[:count] if found else _NONE

    def _holds(self, swept: Sweep) -> bool:
        """Whether a zone's ring lies in a hull, or a chain of hulls in a zone."""
        if len(self.anchors.query(swept.hulls, predicate='intersects')[0]):
            return True
        step = np.diff(swept.segment)
        chains = np.concatenate(([0], np.flatnonzero((step < 0) | (step > 1)) + 1))
        points = shapely.get_point(shapely.get_exterior_ring(swept.hulls[chains]), 0)
        return bool(len(self.tree.query(points, predicate='intersects')[0]))


def _ranks(swept: Sweep) -> np.ndarray:
    """Each hull's place in time: by start time, then index."""
    ranks = np.empty(len(swept.start), dtype=np.int64)
    ranks[np.argsort(swept.start, kind='stable')] = np.arange(len(ranks))
    return ranks


def _touches(swept: Sweep, hull: np.ndarray, zone: np.ndarray, most: int) -> _Proximity:
    """Of touching (hull, zone) pairs: the zones in spec order, at most ``most``, each with its
    first hull (by start time, then index)."""
    key = np.lexsort((_ranks(swept)[hull], zone))
    zone, hull = zone[key], hull[key]
    first = np.concatenate(([True], zone[1:] != zone[:-1]))
    zone, hull = zone[first], hull[first]
    return _Proximity(hull[:most], zone[:most], len(zone) > most,
                      float(swept.start[hull].min()))


class _HalfPlanes:
    """A convex polygon as half-planes: a point is in it iff xy @ normals <= offsets.

    Agrees with shapely's exact predicates up to float rounding (~1e-15 of the coordinates).
    """

    def __init__(self, corners: np.ndarray):
        normals = -1j * (np.roll(corners, -1) - corners)    # outward, corners counter-clockwise
        self.normals = np.array([normals.real, normals.imag])
        self.offsets = (corners * normals.conj()).real

    @classmethod
    def of(cls, polygon) -> _HalfPlanes | None:
        """The half-planes of a convex polygon; None for one that is not convex."""
        if not polygon.equals(polygon.convex_hull):
            return None
        return cls(Footprint.of(polygon).corners)

    def holds(self, xy: np.ndarray) -> np.ndarray:
        """Per point of xy (P, 2): inside or on the polygon."""
        return (xy @ self.normals <= self.offsets).all(axis=1)


class _CoverageIndex:
    """The lowest audit coverage over every grid cell a set of boxes overlaps.

    A cell outside the grid counts 0: the grid is padded with one ring of zero cells and boxes are
    clipped to it, so the work is bounded by the grid whatever the boxes. Each box's cells are
    looked up directly while that is cheaper (boxes rarely span more than two cells), otherwise
    they are marked on the grid once with a 2-D difference array (+1/-1 at the corners of each
    box; cumulative sums count the boxes over each cell).
    """

    def __init__(self, grid: CoverageGrid):
        self.origin = np.tile(grid.origin, 2)                 # for (xmin, ymin, xmax, ymax)
        self.resolution = grid.resolution
        self.padded = np.pad(grid.cells, 1)
        self.top = np.tile(grid.cells.shape[::-1], 2)         # (cols, rows, cols, rows)
        self._corner = tuple(zip(self.origin.tolist(), self.top.tolist()))

    def least(self, bounds: np.ndarray, extent: tuple[float, float, float, float]
              ) -> tuple[float, float, float]:
        """(coverage, x, y of that cell's centre) over boxes (M, 4) of (xmin, ymin, xmax, ymax)
        whose box of them all is ``extent``."""
        if all(map(math.isfinite, extent)):
            col, row, last_col, last_row = (
                min(max(math.floor((v - origin) / self.resolution), -1), top) + 1
                for v, (origin, top) in zip(extent, self._corner))
            if (col, row) == (last_col, last_row):       # one cell holds every box
                return self._cell(row, col)
        cell = np.floor((bounds - self.origin) / self.resolution)
        cell = np.minimum(np.maximum(cell, -1), self.top).astype(np.int64) + 1   # padded
        first, last = cell[:, :2], cell[:, 2:]
        span = (last - first).max(axis=0) + 1
        if len(bounds) * span[0] * span[1] <= self.padded.size:
            col = np.minimum(cell[:, 0, None, None] + np.arange(span[0]), cell[:, 2, None, None])
            row = np.minimum(cell[:, 1, None, None] + np.arange(span[1])[:, None],
                             cell[:, 3, None, None])
            values = self.padded[row, col]
            m, ij = divmod(int(values.argmin()), span[0] * span[1])
            row, col = row[m, ij // span[0], 0], col[m, 0, ij % span[0]]
        else:
            marks = np.zeros((self.padded.shape[0] + 1, self.padded.shape[1] + 1), np.int64)
            for r, c, sign in ((first[:, 1], first[:, 0], 1), (first[:, 1], last[:, 0] + 1, -1),
                               (last[:, 1] + 1, first[:, 0], -1),
                               (last[:, 1] + 1, last[:, 0] + 1, 1)):
                np.add.at(marks, (r, c), sign)
            touched = marks.cumsum(axis=0).cumsum(axis=1)[:-1, :-1] > 0
            row, col = np.unravel_index(np.argmin(np.where(touched, self.padded, np.inf)),
                                        self.padded.shape)
        return self._cell(int(row), int(col))

    def _cell(self, row: int, col: int) -> tuple[float, float, float]:
        """(coverage, x, y of the centre) of padded cell (row, col)."""
        x = self.origin[0] + (col - 0.5) * self.resolution
        y = self.origin[1] + (row - 0.5) * self.resolution
        return float(self.padded[row, col]), float(x), float(y)
