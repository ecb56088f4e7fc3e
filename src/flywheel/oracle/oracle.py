"""The Oracle: scores one proposal against an OracleSpec and returns raw SafetySignals.

It never decides and never raises on a bad proposal: a malformed proposal yields signals with every
risk at 1 and status INPUT_REJECTED, so even a Gate that trusted the Oracle blindly would stop.
Scoring is deterministic: the same spec and proposal give the same signals.
"""
from __future__ import annotations

import math

import numpy as np
import shapely
from shapely import STRtree

from flywheel.oracle.spec import OracleSpec
from flywheel.oracle.sweep import Sweep, sweep
from flywheel.proposal import V, W, YAW, Proposal, ProposalLimits, check_proposal
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals

# A constraint's risk rises linearly from 0 at this fraction of its limit to 1 at the limit.
SOFT_FRACTION = 0.8


def ramp(ratio: float) -> float:
    """Risk of a value at ``ratio`` times its limit."""
    return min(1.0, max(0.0, (float(ratio) - SOFT_FRACTION) / (1.0 - SOFT_FRACTION)))


class Oracle:
    """Scores proposals with one spec; build a new Oracle to change spec (the swap is atomic)."""

    def __init__(self, spec: OracleSpec, limits: ProposalLimits):
        self.spec = spec
        self.limits = limits
        self._zones = spec.obstacles + spec.keep_out
        self._zone_kind = ([EvidenceKind.COLLISION] * len(spec.obstacles)
                           + [EvidenceKind.KEEP_OUT] * len(spec.keep_out))
        self._polygons = np.array([z.polygon for z in self._zones], dtype=object)
        self._tree = STRtree(self._polygons) if self._zones else None
        for zone in self._zones:
            shapely.prepare(zone.polygon)
        # A convex geofence holds a convex hull iff it holds the hull's vertices: a cheap test.
        self._convex_geofence = (spec.geofence is not None
                                 and spec.geofence.equals(spec.geofence.convex_hull))
        if spec.geofence is not None:
            shapely.prepare(spec.geofence)
        shapely.prepare(spec.uncertainty.validated_region)
        for zone in spec.speed_zones:
            shapely.prepare(zone.polygon)
        self._footprint_xy = np.asarray(spec.footprint.convex_hull.exterior.coords)[:-1]

    def evaluate(self, proposal: Proposal) -> SafetySignals:
        defects = check_proposal(proposal, self.limits)
        if defects:
            return self.rejected(proposal, [f'input:{d.name.lower()}' for d, _ in defects])
        evidence: list[Evidence] = []
        swept = sweep(proposal.states[:, :YAW + 1], self._footprint_xy,
                      self.spec.max_sweep_yaw_step)
        collision, clearance, ttc = self._collision(proposal, swept, evidence)
        constraint = max(self._kinematics(proposal, evidence), self._geofence(swept, evidence))
        u, c_a = self._uncertainties(proposal, evidence)
        evidence.sort(key=lambda e: -e.severity)
        status = EvidenceStatus.COMPLETE if evidence else EvidenceStatus.NONE
        if len(evidence) > self.spec.max_evidence:
            evidence, status = evidence[:self.spec.max_evidence], EvidenceStatus.TRUNCATED
        return self._signals(proposal, collision, constraint, clearance, ttc, u, c_a,
                             tuple(evidence), status)

    def rejected(self, proposal: Proposal, rule_ids: list[str]) -> SafetySignals:
        """Signals that score nothing and stop everything: every risk 1, status INPUT_REJECTED."""
        evidence = tuple(Evidence(rule_id, EvidenceKind.INPUT, 0.0) for rule_id in rule_ids)
        return self._signals(proposal, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, evidence,
                             EvidenceStatus.INPUT_REJECTED)

    def _signals(self, proposal, collision, constraint, clearance, ttc, u, c_a, evidence, status):
        spec = self.spec
        return SafetySignals(
            proposal_id=proposal.proposal_id, proposal_digest=proposal.digest,
            oracle_version=spec.version, overlay_version=spec.overlay_version, stamp_ns=0,
            safety_score=1.0 - max(collision, constraint), collision_risk=collision,
            constraint_risk=constraint, min_clearance=clearance, time_to_collision=ttc,
            prediction_uncertainty=u, prediction_uncertainty_threshold=spec.uncertainty.threshold,
            coverage_uncertainty=c_a, coverage_uncertainty_threshold=spec.coverage.threshold,
            evidence_status=status, evidence=evidence)

    def _collision(self, proposal: Proposal, swept: Sweep,
                   evidence: list) -> tuple[float, float, float]:
        """(collision_risk, min_clearance, time_to_collision) of the swept footprint."""
        if self._tree is None:
            return 0.0, math.inf, math.inf
        hit_hull, hit_zone = self._tree.query(swept.hulls, predicate='intersects')
        margin = self.spec.limits.clearance_margin
        if len(hit_hull):
            first = int(hit_hull.min())
            ttc = float(proposal.times[swept.segment[first]])
            for zone in np.unique(hit_zone):
                hull = int(hit_hull[hit_zone == zone].min())
                overlap = shapely.intersection(swept.hulls[hull], self._zones[zone].polygon)
                where = overlap.centroid if not overlap.is_empty else swept.hulls[hull].centroid
                evidence.append(Evidence(self._zones[zone].zone_id, self._zone_kind[zone],
                                         float(overlap.area), where.x, where.y, 1.0))
            return 1.0, 0.0, ttc
        # Zones within the horizon of the whole sweep in one tree query (a collection's distance
        # is the smallest over its parts); beyond the horizon clearance is reported as +inf.
        sweep_all = shapely.geometrycollections(swept.hulls)
        near = self._tree.query(sweep_all, predicate='dwithin',
                                distance=self.spec.limits.clearance_horizon)
        if not len(near):
            return 0.0, math.inf, math.inf
        distances = shapely.distance(sweep_all, self._polygons[near])
        nearest = int(near[np.argmin(distances)])
        clearance = float(distances.min())
        risk = max(0.0, 1.0 - clearance / margin)
        if risk > 0.0:
            zone = self._zones[nearest]
            where = swept.hulls[int(np.argmin(shapely.distance(swept.hulls, zone.polygon)))]
            evidence.append(Evidence(zone.zone_id, EvidenceKind.CLEARANCE, clearance,
                                     where.centroid.x, where.centroid.y, risk))
        return risk, clearance, math.inf

    def _kinematics(self, proposal: Proposal, evidence: list) -> float:
        """Risk from speed, yaw rate, curvature, acceleration and speed-limit zones.

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
        for zone in self.spec.speed_zones:
            inside = shapely.contains_xy(zone.polygon, states[:, 0], states[:, 1])
            if inside.any():
                checks.append((zone.zone_id, EvidenceKind.SPEED_ZONE, speed * inside,
                               cmd_speed if inside[0] else 0.0, zone.max_speed))
        risk = 0.0
        for rule_id, kind, values, at_command, limit in checks:
            i = int(values.argmax())
            value = max(float(values[i]), at_command)
            if at_command > values[i]:
                i = 0
            r = ramp(value / limit) if limit > 0.0 else float(value > 0.0)
            if r > 0.0:
                evidence.append(Evidence(rule_id, kind, value, float(states[i, 0]),
                                         float(states[i, 1]), r))
                risk = max(risk, r)
        return risk

    def _geofence(self, swept: Sweep, evidence: list) -> float:
        """1 when any part of the swept footprint leaves the geofence."""
        if self.spec.geofence is None:
            return 0.0
        if self._convex_geofence:
            xy = swept.vertices.reshape(-1, 2)
            if shapely.intersects_xy(self.spec.geofence, xy[:, 0], xy[:, 1]).all():
                return 0.0
        outside = ~shapely.covered_by(swept.hulls, self.spec.geofence)
        if not outside.any():
            return 0.0
        spill = shapely.difference(swept.hulls[int(np.argmax(outside))], self.spec.geofence)
        evidence.append(Evidence('geofence', EvidenceKind.GEOFENCE, float(spill.area),
                                 spill.centroid.x, spill.centroid.y, 1.0))
        return 1.0

    def _uncertainties(self, proposal: Proposal, evidence: list) -> tuple[float, float]:
        xy = proposal.states[:, :2]
        u, i = self.spec.uncertainty(xy, proposal.states[:, V])
        if u > self.spec.uncertainty.threshold:
            evidence.append(Evidence('uncertainty:validated_envelope', EvidenceKind.UNCERTAINTY,
                                     u, xy[i, 0], xy[i, 1], u))
        c_a, j = self.spec.coverage(xy)
        if c_a > self.spec.coverage.threshold:
            evidence.append(Evidence('coverage:audit_grid', EvidenceKind.COVERAGE, c_a,
                                     xy[j, 0], xy[j, 1], c_a))
        return u, c_a
