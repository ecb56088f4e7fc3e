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

import math
from dataclasses import replace

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
        self._polygons = np.array([z.polygon for z in self._zones], dtype=object)
        # The tree holds each zone's box grown by clearance_horizon: a query with the swept hulls
        # (boxes only) finds every (hull, zone) pair that may lie within that distance.
        reach = shapely.bounds(self._polygons) + spec.limits.clearance_horizon * np.array(
            [-1.0, -1.0, 1.0, 1.0])
        self._tree = STRtree(shapely.box(*reach.T)) if self._zones else None
        for zone in self._zones:
            shapely.prepare(zone.polygon)
        # A convex polygon holds a convex hull iff it holds the hull's vertices: a cheap test.
        self._fence = _HalfPlanes.of(spec.geofence) if spec.geofence is not None else None
        if spec.geofence is not None:
            shapely.prepare(spec.geofence)
        self._validated = _HalfPlanes.of(spec.uncertainty.validated_region)
        shapely.prepare(spec.uncertainty.validated_region)
        self._coverage = _CoverageIndex(spec.coverage)
        self._speed_tree = (STRtree([z.polygon for z in spec.speed_zones])
                            if spec.speed_zones else None)
        self._footprint = Footprint.of(spec.footprint)
        # Pose i+1 may lie kinematic_tolerance (m) and kinematic_yaw_tolerance (rad) off the end
        # of arc i: the jump between them stays within this of the swept placements.
        self._segment_margin = (self.limits.kinematic_tolerance
                                + self.limits.kinematic_yaw_tolerance * self._footprint.radius)

    def evaluate(self, proposal: Proposal) -> SafetySignals:
        defects = check_proposal(proposal, self.limits)
        if defects:
            return self.rejected(proposal, [f'input:{d.name.lower()}' for d, _ in defects])
        evidence: list[Evidence] = []
        swept = self.swept(proposal)
        # |v| of the trajectory's twists, then of the command
        speeds = np.abs(np.append(proposal.states[:, V], proposal.command[0]))
        collision, clearance, ttc = self._collision(swept, evidence)
        constraint = max(self._kinematics(proposal, evidence),
                         self._speed_zones(swept, evidence),
                         self._geofence(swept, evidence))
        u, c_a = self._uncertainties(proposal, swept, speeds, evidence)
        evidence.sort(key=lambda e: -e.severity)
        status = EvidenceStatus.COMPLETE if evidence else EvidenceStatus.NONE
        if len(evidence) > self.spec.max_evidence:
            evidence, status = evidence[:self.spec.max_evidence], EvidenceStatus.TRUNCATED
        return self._signals(proposal, collision, constraint, clearance, ttc, u, c_a,
                             tuple(evidence), status)

    def swept(self, proposal: Proposal) -> Sweep:
        """The scored region of a well-formed proposal of N points: segments 0..N-2 are the
        trajectory's (twist i from pose i to pose i+1), segment N is the command held for
        command_hold from the first pose (its end pose N+1 is the exact arc end)."""
        spec, states, t_ns = self.spec, proposal.states, proposal.t_ns
        n = len(states)
        v, w = proposal.command
        x, y, yaw = states[0, :YAW + 1]
        poses = np.empty((n + 2, 3))
        poses[:n] = states[:, :YAW + 1]
        poses[n] = x, y, yaw
        poses[n + 1] = step(x, y, yaw, v, w, spec.command_hold)
        twists = np.zeros((n + 2, 2))
        twists[:n] = states[:, V:W + 1]
        twists[n] = v, w
        durations = np.zeros(n + 2)
        durations[:n - 1] = (t_ns[1:] - t_ns[:-1]) * 1e-9
        durations[n] = spec.command_hold
        times = np.zeros(n + 2)
        times[:n] = t_ns * 1e-9
        margins = np.full(n + 2, self._segment_margin)
        margins[n] = (spec.anchor_tolerance
                      + spec.anchor_yaw_tolerance * (self._footprint.radius
                                                     + abs(v) * spec.command_hold))
        return sweep(poses, twists, durations, times, margins,
                     np.append(np.arange(n - 1), n), self._footprint, spec.sweep_tolerance)

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

    def _collision(self, swept: Sweep, evidence: list) -> tuple[float, float, float]:
        """(collision_risk, min_clearance, time_to_collision) of the swept region; the time is
        that of the earliest hull touching a zone, along the trajectory or along the hold.

        One tree query finds every (hull, zone) pair whose boxes lie within clearance_horizon
        (a superset of the pairs that close), and one vectorised distance per pair decides both
        contact (distance 0) and clearance, exactly.
        """
        if self._tree is None:
            return 0.0, math.inf, math.inf
        horizon = self.spec.limits.clearance_horizon
        hull, zone = self._tree.query(swept.hulls)
        if not len(hull):
            return 0.0, math.inf, math.inf
        distance = shapely.distance(swept.hulls[hull], self._polygons[zone])
        hit = distance == 0.0
        if hit.any():
            hull, zone = hull[hit], zone[hit]
            starts = swept.start[hull]
            for z in np.unique(zone):
                first = int(hull[zone == z][starts[zone == z].argmin()])
                overlap = shapely.intersection(swept.hulls[first], self._zones[z].polygon)
                where = overlap.centroid if not overlap.is_empty else swept.hulls[first].centroid
                evidence.append(Evidence(self._zones[z].zone_id, self._zone_kind[z],
                                         float(overlap.area), where.x, where.y, 1.0))
            return 1.0, 0.0, float(starts.min())
        closest = int(distance.argmin())
        clearance = float(distance[closest])
        if clearance > horizon:
            return 0.0, math.inf, math.inf
        risk = max(0.0, 1.0 - clearance / self.spec.limits.clearance_margin)
        if risk > 0.0:
            where = swept.hulls[hull[closest]].centroid
            evidence.append(Evidence(self._zones[zone[closest]].zone_id, EvidenceKind.CLEARANCE,
                                     clearance, where.x, where.y, risk))
        return risk, clearance, math.inf

    def _kinematics(self, proposal: Proposal, evidence: list) -> float:
        """Risk from speed, yaw rate, curvature and acceleration.

        The command is executed first, so it is checked like a sample at the first pose.
        """
        limits, states = self.spec.limits, proposal.states
        speed, yaw_rate = np.abs(states[:, V]), np.abs(states[:, W])
        cmd_speed, cmd_yaw_rate = abs(proposal.command[0]), abs(proposal.command[1])
        checks = [('limit:max_speed', EvidenceKind.SPEED, speed, cmd_speed, limits.max_speed),
                  ('limit:max_yaw_rate', EvidenceKind.YAW_RATE, yaw_rate, cmd_yaw_rate,
                   limits.max_yaw_rate)]
        moving = speed > limits.curvature_min_speed
        if moving.any() or cmd_speed > limits.curvature_min_speed:
            curvature = np.where(moving, yaw_rate / np.maximum(speed, 1e-12), 0.0)
            cmd_curvature = (cmd_yaw_rate / cmd_speed
                             if cmd_speed > limits.curvature_min_speed else 0.0)
            checks.append(('limit:max_curvature', EvidenceKind.CURVATURE, curvature,
                           cmd_curvature, limits.max_curvature))
        if len(states) > 1:
            # acceleration over segment k is placed at its end, point k+1
            accel = np.zeros(len(states))
            accel[1:] = np.abs((states[1:, V] - states[:-1, V])
                               / ((proposal.t_ns[1:] - proposal.t_ns[:-1]) * 1e-9))
            checks.append(('limit:max_acceleration', EvidenceKind.ACCELERATION, accel, 0.0,
                           limits.max_acceleration))
        risk = 0.0
        for rule_id, kind, values, at_command, limit in checks:
            i = int(values.argmax())
            value = max(float(values[i]), at_command)
            if at_command > values[i]:
                i = 0
            r = ramp(value / limit)
            if r > 0.0:
                evidence.append(Evidence(rule_id, kind, value, float(states[i, 0]),
                                         float(states[i, 1]), r))
                risk = max(risk, r)
        return risk

    def _speed_zones(self, swept: Sweep, evidence: list) -> float:
        """Risk from speed-limit zones: a zone applies to every swept hull touching it, at the
        largest speed of the steps that hull covers (the command's along the hold), so crossing a
        zone between two samples outside it counts."""
        if self._speed_tree is None:
            return 0.0
        hit_hull, hit_zone = self._speed_tree.query(swept.hulls, predicate='intersects')
        risk = 0.0
        if not len(hit_hull):
            return risk
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
        if self._fence is not None and self._fence.holds(swept.placements.reshape(-1, 2)).all():
            return 0.0
        outside = ~shapely.covered_by(swept.hulls, self.spec.geofence)
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
        inside = (self._validated.holds(xy) if self._validated is not None
                  else shapely.contains_xy(model.validated_region, xy[:, 0], xy[:, 1]))
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
        coverage, x, y = self._coverage.least(swept.bounds)
        c_a = 1.0 - coverage
        if c_a > self.spec.coverage.threshold:
            evidence.append(Evidence('coverage:audit_grid', EvidenceKind.COVERAGE, c_a, x, y, c_a))
        return u, c_a


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

    def least(self, bounds: np.ndarray) -> tuple[float, float, float]:
        """(coverage, x, y of that cell's centre) over boxes (M, 4) of (xmin, ymin, xmax, ymax)."""
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
        x, y = self.origin[:2] + (np.array([col, row]) - 0.5) * self.resolution
        return float(self.padded[row, col]), float(x), float(y)
