"""Message <-> core conversions for the control loop (proposals, signals, decisions, twists).
Pure translation: no decisions, no defaults that hide bad input. The hot path reads proposals and
verdicts from their bytes (flywheel/wire.py, flywheel/signals_wire.py) and the Gate its odometry
(odometry_from_bytes); these message conversions are for everything else, and are what the
tests hold the byte codecs to."""
from __future__ import annotations

import dataclasses
import math
import struct
from array import array

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Twist

from alignment_flywheel.msg import Evidence as EvidenceMsg
from alignment_flywheel.msg import GateDecision, OracleStatus as OracleStatusMsg
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg, TrajectoryPoint
from flywheel.cdr import Reader
from flywheel.enforcement.decision import Decision
from flywheel.kinematics import RobotState
from flywheel.odometry import Odometry
from flywheel.oracle_status import OracleStatus
from flywheel.proposal import Proposal, make_proposal
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals

MAX_LATENCY_NS = 3600 * 1_000_000_000
_TIME = struct.Struct('<iI')
MAX_FRAME_ID = 256        # header.frame_id, child_frame_id (unbounded in the message)
# nav_msgs/Odometry after child_frame_id: the pose (position, orientation), its covariance
# (skipped), the twist (linear, angular), its covariance (skipped, but it must be there).
_ODOMETRY = struct.Struct('<7d288x6d288x')


def to_time(ns: int) -> Time:
    """A stamp; clamped to what builtin_interfaces/Time can hold (int32 seconds)."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    if not -2**31 <= sec < 2**31:
        sec, nanosec = (2**31 - 1, 999_999_999) if sec > 0 else (-2**31, 0)
    return Time(sec=sec, nanosec=nanosec)


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
    msg.proposal_id, msg.proposer_id = p.proposal_id, p.proposer_id
    msg.epoch, msg.seq = p.epoch, p.seq
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
    msg.key_id, msg.signature = p.key_id, list(p.signature)
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
    return dataclasses.replace(
        make_proposal(msg.proposal_id, msg.proposer_id, msg.seq, msg.header.frame_id,
                      from_time(msg.header.stamp), t_ns, states,
                      (msg.command.linear.x, msg.command.angular.z), msg.epoch),
        key_id=msg.key_id, signature=bytes(msg.signature))


def signals_to_msg(s: SafetySignals, frame_id: str) -> SignalsMsg:
    msg = SignalsMsg()
    msg.header.stamp = to_time(s.stamp_ns)
    msg.header.frame_id = frame_id
    msg.proposal_id, msg.proposal_digest = s.proposal_id, s.proposal_digest
    msg.oracle_version, msg.overlay_version = s.oracle_version, s.overlay_version
    msg.epoch, msg.seq = s.epoch, s.seq
    msg.safety_score, msg.collision_risk = s.safety_score, s.collision_risk
    msg.constraint_risk, msg.min_clearance = s.constraint_risk, s.min_clearance
    msg.time_to_collision = s.time_to_collision
    msg.prediction_uncertainty = s.prediction_uncertainty
    msg.prediction_uncertainty_threshold = s.prediction_uncertainty_threshold
    msg.coverage_uncertainty = s.coverage_uncertainty
    msg.coverage_uncertainty_threshold = s.coverage_uncertainty_threshold
    msg.scored_hold, msg.anchor_tolerance = s.scored_hold, s.anchor_tolerance
    msg.anchor_yaw_tolerance = s.anchor_yaw_tolerance
    msg.evidence_status = int(s.evidence_status)
    msg.evidence = [EvidenceMsg(rule_id=e.rule_id, kind=int(e.kind), value=float(e.value),
                                location=Point(x=float(e.x), y=float(e.y)))
                    for e in s.evidence]
    msg.evaluation_duration = to_duration(s.evaluation_ns)
    msg.key_id, msg.signature = s.key_id, list(s.signature)
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
        evaluation_ns=from_time(msg.evaluation_duration), epoch=msg.epoch, seq=msg.seq,
        scored_hold=msg.scored_hold, anchor_tolerance=msg.anchor_tolerance,
        anchor_yaw_tolerance=msg.anchor_yaw_tolerance, key_id=msg.key_id,
        signature=bytes(msg.signature))


def decision_to_msg(d: Decision, epoch: int, seq: int, frame_id: str) -> GateDecision:
    """``frame_id`` is the world frame, for the embedded verdict's header."""
    msg = GateDecision()
    msg.subject = int(d.subject)
    msg.header.stamp = to_time(d.stamp_ns)
    msg.epoch, msg.seq = epoch, seq
    msg.proposal_id, msg.proposer_id, msg.proposal_digest = (d.proposal_id, d.proposer_id,
                                                             d.proposal_digest)
    msg.action = int(d.action)
    msg.reasons = [int(f.reason) for f in d.findings]
    msg.details = [f.detail for f in d.findings]
    msg.oracle_version, msg.policy_version = d.oracle_version, d.policy_version
    msg.command_published = d.command is not None
    msg.command = twist(*(d.command or (0.0, 0.0)))
    msg.latency = to_duration(min(max(0, d.latency_ns), MAX_LATENCY_NS))
    msg.signals = [signals_to_msg(s, frame_id) for s, _ in d.verdicts]
    msg.signal_actions = [int(a) for _, a in d.verdicts]
    if d.answer is not None:
        from flywheel.ros.answer_msgs import answer_to_msg   # it uses this module's time helpers
        msg.answer = [answer_to_msg(d.answer)]
    return msg


def odometry_from_bytes(data: bytes) -> Odometry:
    """nav_msgs/Odometry from its CDR bytes, without building the message (its two covariances
    alone are 72 floats): the frames are read within MAX_FRAME_ID first. WireError (a
    ValueError) if the bytes are malformed or over a bound."""
    r = Reader(data)
    sec, nanosec = r.unpack(_TIME, 4, 'header.stamp')
    frame_id = r.string('header.frame_id', MAX_FRAME_ID)
    r.string('child_frame_id', MAX_FRAME_ID)
    x, y, _, qx, qy, qz, qw, v, _, _, _, _, w = r.unpack(_ODOMETRY, 8, 'pose and twist')
    yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    return Odometry(RobotState(x, y, yaw, v, w), sec * 1_000_000_000 + nanosec, frame_id)


def odometry_from_msg(msg) -> Odometry:
    pose, tw = msg.pose.pose, msg.twist.twist
    return Odometry(RobotState(pose.position.x, pose.position.y, yaw_of(pose.orientation),
                               tw.linear.x, tw.angular.z),
                    from_time(msg.header.stamp), msg.header.frame_id)


def status_from_msg(msg: OracleStatusMsg) -> OracleStatus:
    return OracleStatus(
        epoch=msg.epoch, seq=msg.seq, stamp_ns=from_time(msg.header.stamp), state=msg.state,
        active_version=msg.active_version, active_number=msg.active_number,
        previous_version=msg.previous_version, previous_number=msg.previous_number,
        installed_max=msg.installed_max, oracle_running=msg.oracle_running, accepted_versions=tuple(msg.accepted_versions),
        root_version=msg.root_version, root=bytes(msg.root), last_rejection=msg.last_rejection,
        candidate_version=msg.candidate_version, candidate_number=msg.candidate_number,
        stage=msg.stage, rollout=msg.rollout, key_id=msg.key_id, signature=bytes(msg.signature))


def status_to_msg(s: OracleStatus) -> OracleStatusMsg:
    msg = OracleStatusMsg(
        epoch=s.epoch, seq=s.seq, state=s.state, active_version=s.active_version,
        active_number=s.active_number, previous_version=s.previous_version,
        previous_number=s.previous_number, installed_max=s.installed_max,
        oracle_running=s.oracle_running,
        accepted_versions=list(s.accepted_versions), root_version=s.root_version,
        last_rejection=s.last_rejection, candidate_version=s.candidate_version,
        candidate_number=s.candidate_number, stage=s.stage, rollout=s.rollout, key_id=s.key_id)
    msg.header.stamp = to_time(s.stamp_ns)
    msg.root = array('B', s.root)
    msg.signature = list(s.signature)
    return msg
