"""Decisions are data: an Action, the Reasons behind it, and the command actually published.

Action and Reason mirror the ACTION_* and REASON_* constants of msg/GateDecision.msg one to one
(a test holds them together). Actions are ordered by restrictiveness; the most restrictive wins.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from flywheel.proposal import Defect
from flywheel.signals import SafetySignals
from flywheel.verifier_answer import VerifierAnswer


class Action(enum.IntEnum):
    ALLOW = 0
    DEGRADE = 1
    ESCALATE = 2
    BLOCK = 3
    FALLBACK = 4

    @property
    def approves(self) -> bool:
        """Only these let a (possibly limited) proposed command through."""
        return self in (Action.ALLOW, Action.DEGRADE)


class Reason(enum.IntEnum):
    WITHIN_POLICY = 0
    COLLISION_RISK = 1
    CONSTRAINT_RISK = 2
    LOW_SAFETY_SCORE = 3
    TIME_TO_COLLISION = 4
    PREDICTION_UNCERTAINTY = 5
    COVERAGE_UNCERTAINTY = 6
    DIGEST_MISMATCH = 7
    UNKNOWN_ORACLE_VERSION = 8
    STALE_VERDICT = 9
    STALE_PROPOSAL = 10
    NO_VERDICT = 11
    UNKNOWN_PROPOSAL = 12
    NON_FINITE = 13
    EMPTY_TRAJECTORY = 14
    NON_MONOTONIC_TIME = 15
    TOO_MANY_POINTS = 16
    WRONG_FRAME = 17
    UNKNOWN_PROPOSER = 18
    INPUT_REJECTED_BY_ORACLE = 19
    INTERNAL_ERROR = 20
    REPLAYED_SEQ = 21
    SHAPE_MISMATCH = 22
    COMMAND_MISMATCH = 23
    KINEMATIC_MISMATCH = 24
    HORIZON_TOO_SHORT = 25
    HORIZON_TOO_LONG = 26
    SAMPLE_GAP = 27
    FUTURE_STAMP = 28
    START_POSE_MISMATCH = 29
    STALE_ODOMETRY = 30
    HOLD_NOT_COVERED = 31
    OVERLOAD = 32
    OVERSIZE = 33
    BAD_SIGNATURE = 34
    REPLAYED_VERDICT = 35
    INACTIVE = 36
    SEQ_JUMP = 37
    MALFORMED = 38
    VERIFIED_SAFE = 39
    VERIFIED_UNSAFE = 40
    VERIFY_TIMEOUT = 41

    @classmethod
    def of_defect(cls, defect: Defect) -> 'Reason':
        return cls[defect.name]


class Subject(enum.IntEnum):
    """What a Decision is about: the one decision of a proposal, a verdict that was ignored,
    what a candidate release's verdict would have led to in a shadow rollout (not enforced), or
    what came of an escalated proposal's verification (the verifier's answer, or none in time)."""

    PROPOSAL = 0
    VERDICT = 1
    SHADOW = 2
    VERIFICATION = 3


@dataclass(frozen=True)
class Finding:
    """One rule of the policy (or of the Gate's own checks) that fired."""

    action: Action
    reason: Reason
    detail: str = ''


@dataclass(frozen=True)
class Decision:
    """What the Gate did with one proposal; ``command`` is None when nothing was published."""

    proposal_id: str
    proposer_id: str
    proposal_digest: str
    action: Action
    findings: tuple[Finding, ...]
    oracle_version: str
    policy_version: str
    command: tuple[float, float] | None
    stamp_ns: int
    latency_ns: int
    subject: Subject = Subject.PROPOSAL
    # The verdicts applied (or ignored, or shadowed), each with the action it alone leads to:
    # one, or two in a canary rollout (the active release's first, then the candidate's).
    verdicts: tuple[tuple[SafetySignals, Action], ...] = ()
    # VERIFICATION records: the verifier's answer they are about (None when none came in time).
    answer: VerifierAnswer | None = None

    @property
    def signals(self) -> SafetySignals | None:
        """The first verdict (the active release's), if any."""
        return self.verdicts[0][0] if self.verdicts else None

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return tuple(f.reason for f in self.findings)


def most_restrictive(findings: list[Finding]) -> tuple[Action, tuple[Finding, ...]]:
    """The winning action and every finding, most restrictive first; no finding means ALLOW."""
    if not findings:
        return Action.ALLOW, (Finding(Action.ALLOW, Reason.WITHIN_POLICY),)
    ordered = tuple(sorted(findings, key=lambda f: -f.action))
    return ordered[0].action, ordered
