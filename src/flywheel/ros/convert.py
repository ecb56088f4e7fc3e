"""Message <-> core conversions. Pure translation: no decisions, no defaults that hide bad input."""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Twist

from alignment_flywheel.msg import Evidence as EvidenceMsg
from alignment_flywheel.msg import GateDecision, Incident, Proposal as ProposalMsg
from alignment_flywheel.msg import ReleaseEvent
from alignment_flywheel.msg import SafetySignals as SignalsMsg, TrajectoryPoint
from flywheel.audit.incident import IncidentReport
from flywheel.enforcement.decision import Action, Decision, Reason
from flywheel.proposal import Proposal, make_proposal
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals
from flywheel.sim.sim import EventKind, SimEvent


def to_time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def from_time(t) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


def to_duration(ns: int) -> Duration:
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def twist(v: float, w: float) -> Twist:
    msg = Twist()
    msg.linear.x = float(v)
    msg.angular.z = float(w)
    return msg


def yaw_of(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def proposal_to_msg(p: Proposal) -> ProposalMsg:
    msg = ProposalMsg()
    msg.header.stamp = to_time(p.stamp_ns)
    msg.header.frame_id = p.frame_id
    msg.proposal_id, msg.proposer_id, msg.seq = p.proposal_id, p.proposer_id, p.seq
    points = []
    for t_ns, (x, y, yaw, v, w) in zip(p.t_ns.tolist(), p.states.tolist()):
        point = TrajectoryPoint()
        point.pose.position.x, point.pose.position.y = x, y
        point.pose.orientation.z, point.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        point.twist.linear.x, point.twist.angular.z = v, w
        point.time_from_start = to_duration(t_ns)
        points.append(point)
    msg.trajectory = points
    msg.command = twist(*p.command)
    return msg


def proposal_from_msg(msg: ProposalMsg) -> Proposal:
    n = len(msg.trajectory)
    states = np.empty((n, 5))
    t_ns = np.empty(n, dtype=np.int64)
    for i, point in enumerate(msg.trajectory):
        pose, tw = point.pose, point.twist
        states[i] = (pose.position.x, pose.position.y, yaw_of(pose.orientation),
                     tw.linear.x, tw.angular.z)
        t_ns[i] = from_time(point.time_from_start)
    return make_proposal(msg.proposal_id, msg.proposer_id, msg.seq, msg.header.frame_id,
                         from_time(msg.header.stamp), t_ns, states,
                         (msg.command.linear.x, msg.command.angular.z))


def signals_to_msg(s: SafetySignals, stamp_ns: int, frame_id: str, duration_ns: int) -> SignalsMsg:
    msg = SignalsMsg()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.proposal_id, msg.proposal_digest = s.proposal_id, s.proposal_digest
    msg.oracle_version, msg.overlay_version = s.oracle_version, s.overlay_version
    msg.safety_score, msg.collision_risk = s.safety_score, s.collision_risk
    msg.constraint_risk, msg.min_clearance = s.constraint_risk, s.min_clearance
    msg.time_to_collision = s.time_to_collision
    msg.prediction_uncertainty = s.prediction_uncertainty
    msg.prediction_uncertainty_threshold = s.prediction_uncertainty_threshold
    msg.coverage_uncertainty = s.coverage_uncertainty
    msg.coverage_uncertainty_threshold = s.coverage_uncertainty_threshold
    msg.evidence_status = int(s.evidence_status)
    msg.evidence = [EvidenceMsg(rule_id=e.rule_id, kind=int(e.kind), value=float(e.value),
                                location=Point(x=float(e.x), y=float(e.y)))
                    for e in s.evidence]
    msg.evaluation_duration = to_duration(duration_ns)
    return msg


def signals_from_msg(msg: SignalsMsg) -> SafetySignals:
    """Raises ValueError on an evidence status or kind outside the contract."""
    return SafetySignals(
        proposal_id=msg.proposal_id, proposal_digest=msg.proposal_digest,
        oracle_version=msg.oracle_version, overlay_version=msg.overlay_version,
        stamp_ns=from_time(msg.header.stamp), safety_score=msg.safety_score,
        collision_risk=msg.collision_risk, constraint_risk=msg.constraint_risk,
        min_clearance=msg.min_clearance, time_to_collision=msg.time_to_collision,
        prediction_uncertainty=msg.prediction_uncertainty,
        prediction_uncertainty_threshold=msg.prediction_uncertainty_threshold,
        coverage_uncertainty=msg.coverage_uncertainty,
        coverage_uncertainty_threshold=msg.coverage_uncertainty_threshold,
        evidence_status=EvidenceStatus(msg.evidence_status),
        evidence=tuple(Evidence(e.rule_id, EvidenceKind(e.kind), e.value, e.location.x,
                                e.location.y) for e in msg.evidence),
        evaluation_ns=from_time(msg.evaluation_duration))


def decision_to_msg(d: Decision) -> GateDecision:
    msg = GateDecision()
    msg.header.stamp = to_time(d.stamp_ns)
    msg.proposal_id, msg.proposer_id, msg.proposal_digest = (d.proposal_id, d.proposer_id,
                                                             d.proposal_digest)
    msg.action = int(d.action)
    msg.reasons = [int(f.reason) for f in d.findings]
    msg.details = [f.detail for f in d.findings]
    msg.oracle_version, msg.policy_version = d.oracle_version, d.policy_version
    msg.command_published = d.command is not None
    msg.command = twist(*(d.command or (0.0, 0.0)))
    msg.latency = to_duration(max(0, d.latency_ns))
    return msg


_SEVERITY = {EventKind.COLLISION: Incident.SEVERITY_COLLISION,
             EventKind.NEAR_MISS: Incident.SEVERITY_NEAR_MISS}


def incident_from_event(e: SimEvent, frame_id: str, reporter: str, number: int) -> Incident:
    msg = Incident()
    msg.header.stamp = to_time(e.stamp_ns)
    msg.header.frame_id = frame_id
    msg.incident_id = f'{reporter}/{number}'
    msg.severity = _SEVERITY[e.kind]
    msg.position = Point(x=e.x, y=e.y)
    msg.object_id, msg.distance, msg.reporter = e.object_id, e.distance, reporter
    msg.description = f'{e.kind.value} with {e.object_id} at ({e.x:.2f}, {e.y:.2f})'
    return msg


# -- audit records: messages as plain, JSON-ready data ---------------------------------------------

def decision_record(msg: GateDecision) -> dict:
    return {
        'proposal_id': msg.proposal_id, 'proposer_id': msg.proposer_id,
        'proposal_digest': msg.proposal_digest, 'action': Action(msg.action).name,
        'reasons': [Reason(r).name for r in msg.reasons], 'details': list(msg.details),
        'oracle_version': msg.oracle_version, 'policy_version': msg.policy_version,
        'command': ([msg.command.linear.x, msg.command.angular.z] if msg.command_published
                    else None),
        'latency_s': from_time(msg.latency) * 1e-9,
    }


def signals_record(msg: SignalsMsg) -> dict:
    return {
        'proposal_digest': msg.proposal_digest, 'oracle_version': msg.oracle_version,
        'overlay_version': msg.overlay_version, 'safety_score': msg.safety_score,
        'collision_risk': msg.collision_risk, 'constraint_risk': msg.constraint_risk,
        'min_clearance': msg.min_clearance, 'time_to_collision': msg.time_to_collision,
        'prediction_uncertainty': msg.prediction_uncertainty,
        'prediction_uncertainty_threshold': msg.prediction_uncertainty_threshold,
        'coverage_uncertainty': msg.coverage_uncertainty,
        'coverage_uncertainty_threshold': msg.coverage_uncertainty_threshold,
        'evidence_status': msg.evidence_status,
        'evidence': [{'rule_id': e.rule_id, 'kind': e.kind, 'value': e.value,
                      'x': e.location.x, 'y': e.location.y} for e in msg.evidence],
        'stamp_ns': from_time(msg.header.stamp),
    }


def incident_report(msg: Incident, now_ns: int) -> IncidentReport:
    """A zero stamp means now."""
    stamp = from_time(msg.header.stamp) or now_ns
    return IncidentReport(stamp, msg.header.frame_id, msg.severity, msg.position.x,
                          msg.position.y, msg.object_id, msg.distance, msg.reporter,
                          msg.description, tuple(msg.linked_proposal_ids))


_RELEASE_EVENTS = {
    ReleaseEvent.EVENT_SUBMITTED: 'submitted', ReleaseEvent.EVENT_VERIFIED: 'verified',
    ReleaseEvent.EVENT_REJECTED: 'rejected', ReleaseEvent.EVENT_INSTALLED: 'installed',
    ReleaseEvent.EVENT_ROLLED_BACK: 'rolled_back'}


def release_record(msg: ReleaseEvent) -> dict:
    """Raises KeyError on an event outside the contract."""
    return {'event': _RELEASE_EVENTS[msg.event], 'oracle_version': msg.oracle_version,
            'previous_version': msg.previous_version, 'bundle_sha256': msg.bundle_sha256,
            'reason': msg.reason, 'actor': msg.actor}
