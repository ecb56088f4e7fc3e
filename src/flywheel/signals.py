"""SafetySignals: the Oracle's raw, undecided verdict on one proposal, and its evidence.

The enums mirror the constants of alignment_flywheel/msg/Evidence and SafetySignals one to one
(a test holds them together).
"""
from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass


class EvidenceKind(enum.IntEnum):
    INPUT = 0
    COLLISION = 1
    KEEP_OUT = 2
    CLEARANCE = 3
    SPEED = 4
    ACCELERATION = 5
    YAW_RATE = 6
    CURVATURE = 7
    GEOFENCE = 8
    SPEED_ZONE = 9
    UNCERTAINTY = 10
    COVERAGE = 11


class EvidenceStatus(enum.IntEnum):
    NONE = 0
    COMPLETE = 1
    TRUNCATED = 2
    INPUT_REJECTED = 3
    SHED = 4


@dataclass(frozen=True)
class Evidence:
    """One rule that fired: which rule or zone, what kind, how much (unit per kind), where."""

    rule_id: str
    kind: EvidenceKind
    value: float
    x: float = math.nan
    y: float = math.nan
    # How bad, in [0, 1]; orders evidence worst first. Not part of the message.
    severity: float = 1.0


_MAGIC = b'flywheel.signals.v1\0'


@dataclass(frozen=True)
class SafetySignals:
    """What the Oracle says about one proposal; see msg/SafetySignals.msg for every field.

    ``canonical_bytes`` covers every field the Gate decides on (all of them but the evaluation
    time and the signature itself): it is what the Oracle signs and the Gate verifies.
    """

    proposal_id: str
    proposal_digest: str
    oracle_version: str
    overlay_version: str
    stamp_ns: int
    safety_score: float
    collision_risk: float
    constraint_risk: float
    min_clearance: float
    time_to_collision: float
    prediction_uncertainty: float
    prediction_uncertainty_threshold: float
    coverage_uncertainty: float
    coverage_uncertainty_threshold: float
    evidence_status: EvidenceStatus
    evidence: tuple[Evidence, ...] = ()
    evaluation_ns: int = 0
    epoch: int = 0
    seq: int = 0
    scored_hold: float = 0.0
    anchor_tolerance: float = 0.0
    anchor_yaw_tolerance: float = 0.0
    # Who signed canonical_bytes() and the Ed25519 signature ('' and b'' when unsigned).
    key_id: str = ''
    signature: bytes = b''

    def canonical_bytes(self) -> bytes:
        """A byte encoding identical for equal signals on every machine (floats as IEEE 754)."""
        parts = [_MAGIC]
        for text in (self.proposal_id, self.proposal_digest, self.oracle_version,
                     self.overlay_version):
            _put_text(parts, text)
        parts.append(struct.pack(
            '<qQQ12dBI', self.stamp_ns, self.epoch, self.seq, self.safety_score,
            self.collision_risk, self.constraint_risk, self.min_clearance,
            self.time_to_collision, self.prediction_uncertainty,
            self.prediction_uncertainty_threshold, self.coverage_uncertainty,
            self.coverage_uncertainty_threshold, self.scored_hold, self.anchor_tolerance,
            self.anchor_yaw_tolerance, int(self.evidence_status), len(self.evidence)))
        for e in self.evidence:
            _put_text(parts, e.rule_id)
            parts.append(struct.pack('<B3d', int(e.kind), e.value, e.x, e.y))
        return b''.join(parts)


def _put_text(parts: list, text: str) -> None:
    raw = text.encode('utf-8')
    parts.append(struct.pack('<I', len(raw)) + raw)
