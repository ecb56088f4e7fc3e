"""SafetySignals straight from and to their serialized bytes (msg/SafetySignals.msg, little-endian
CDR), bounded before anything is built.

The Oracle publishes the bytes encoded here and the Gate decides on what it decodes here. On the
verdict's path between them rclpy's conversion cost more than the Gate's checks (an object per
field, per evidence item and per point of each, built before any bound is checked). Here every
length is checked against its bound before the bytes behind it are read, a status or evidence kind
outside the contract is refused, and whatever is refused raises WireError: the Gate records the
verdict MALFORMED or OVERSIZE and decides nothing on it. The bytes say nothing about who wrote
them: the signature over ``canonical_bytes()`` does, and the Gate checks it on what was decoded.

test/test_signals_wire.py holds this module to rclpy's serializer both ways.
"""
from __future__ import annotations

import struct

from flywheel.cdr import Reader, Writer
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals

MAX_ID = 64               # proposal_id, proposal_digest, oracle_version, overlay_version, key_id
MAX_FRAME_ID = 256        # header.frame_id (unbounded in the message; bounded here)
MAX_RULE_ID = 128
MAX_EVIDENCE = 64
MAX_SIGNATURE = 64

_TIME = struct.Struct('<iI')           # builtin_interfaces Time and Duration: sec, nanosec
# epoch, seq, the twelve float64 fields from safety_score to anchor_yaw_tolerance, evidence_status
_SCORES = struct.Struct('<QQ12dB')
_PLACE = struct.Struct('<4d')          # Evidence.value, location x, y, z
# The fewest bytes an Evidence item can take (rule_id length, kind, value and location).
_MIN_EVIDENCE = 4 + 1 + _PLACE.size
_KINDS = {int(k): k for k in EvidenceKind}
_STATUSES = {int(s): s for s in EvidenceStatus}


def decode_signals(data: bytes) -> SafetySignals:
    """The SafetySignals in ``data``; WireError (naming the field, with the proposal id once
    read) if malformed or over a bound. Trailing bytes are ignored, as rclpy does."""
    r = Reader(data)
    sec, nanosec = r.unpack(_TIME, 4, 'header.stamp')
    r.string('header.frame_id', MAX_FRAME_ID)
    r.proposal_id = proposal_id = r.string('proposal_id', MAX_ID)
    digest = r.string('proposal_digest', MAX_ID)
    oracle_version = r.string('oracle_version', MAX_ID)
    overlay_version = r.string('overlay_version', MAX_ID)
    (epoch, seq, score, collision, constraint, clearance, ttc, u, u_threshold, c_a,
     c_a_threshold, hold, anchor, anchor_yaw, status) = r.unpack(_SCORES, 8)
    if status not in _STATUSES:
        raise r.fail(f'evidence_status: {status} is not a status of the message')
    evidence = []
    for _ in range(r.length('evidence', MAX_EVIDENCE, _MIN_EVIDENCE)):
        rule_id = r.string('evidence.rule_id', MAX_RULE_ID)
        kind = r.u8()
        if kind not in _KINDS:
            raise r.fail(f'evidence.kind: {kind} is not a kind of the message')
        value, x, y, _ = r.unpack(_PLACE, 8, 'evidence')
        evidence.append(Evidence(rule_id, _KINDS[kind], value, x, y))
    evaluation_sec, evaluation_nanosec = r.unpack(_TIME, 4, 'evaluation_duration')
    key_id = r.string('key_id', MAX_ID)
    signature = r.octets('signature', MAX_SIGNATURE)
    return SafetySignals(
        proposal_id, digest, oracle_version, overlay_version,
        sec * 1_000_000_000 + nanosec, score, collision, constraint, clearance, ttc, u,
        u_threshold, c_a, c_a_threshold, _STATUSES[status], tuple(evidence),
        evaluation_sec * 1_000_000_000 + evaluation_nanosec, epoch, seq, hold, anchor,
        anchor_yaw, key_id, signature)


def encode_signals(s: SafetySignals, frame_id: str) -> bytes:
    """The CDR bytes a ROS 2 subscriber of alignment_flywheel/SafetySignals reads as ``s`` (its
    header's frame_id: ``frame_id``). ValueError naming the field if a string or sequence is over
    its bound: nothing is sent that a reader would refuse."""
    w = Writer()
    write_signals(w, s, frame_id)
    return w.getvalue()


def write_signals(w: Writer, s: SafetySignals, frame_id: str) -> None:
    """``s`` as the next field of ``w`` (alone, or inside a message that carries it)."""
    w.pack(_TIME, 4, *time_fields(s.stamp_ns))
    w.string(frame_id, 'header.frame_id', MAX_FRAME_ID)
    w.string(s.proposal_id, 'proposal_id', MAX_ID)
    w.string(s.proposal_digest, 'proposal_digest', MAX_ID)
    w.string(s.oracle_version, 'oracle_version', MAX_ID)
    w.string(s.overlay_version, 'overlay_version', MAX_ID)
    w.pack(_SCORES, 8, s.epoch, s.seq, s.safety_score, s.collision_risk, s.constraint_risk,
           s.min_clearance, s.time_to_collision, s.prediction_uncertainty,
           s.prediction_uncertainty_threshold, s.coverage_uncertainty,
           s.coverage_uncertainty_threshold, s.scored_hold, s.anchor_tolerance,
           s.anchor_yaw_tolerance, int(s.evidence_status))
    w.length(len(s.evidence), 'evidence', MAX_EVIDENCE)
    for e in s.evidence:
        w.string(e.rule_id, 'evidence.rule_id', MAX_RULE_ID)
        w.u8(int(e.kind))
        w.pack(_PLACE, 8, float(e.value), float(e.x), float(e.y), 0.0)
    w.pack(_TIME, 4, *time_fields(s.evaluation_ns))
    w.string(s.key_id, 'key_id', MAX_ID)
    w.octets(s.signature, 'signature', MAX_SIGNATURE)


def time_fields(ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a stamp or duration, clamped to what int32 seconds can hold."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    if not -2**31 <= sec < 2**31:
        sec, nanosec = (2**31 - 1, 999_999_999) if sec > 0 else (-2**31, 0)
    return sec, nanosec

