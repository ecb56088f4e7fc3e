"""SafetySignals: the Oracle's raw, undecided verdict on one proposal, and its evidence.

The enums mirror the constants of alignment_flywheel/msg/Evidence and SafetySignals one to one
(a test holds them together).
"""
from __future__ import annotations

import enum
import math
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


@dataclass(frozen=True)
class SafetySignals:
    """What the Oracle says about one proposal; see msg/SafetySignals.msg for every field."""

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
