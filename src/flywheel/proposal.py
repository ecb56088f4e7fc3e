"""The Proposal: a short timed trajectory plus the command that starts it, and its digest.

Invariant: the Oracle and the Gate compute the same digest for the same proposal, because both
build this planar core representation from the message and hash its canonical encoding. The digest
covers exactly what is scored and what the Gate may republish (planar pose, body velocities,
timing, identity); message components a planar robot cannot execute are ignored by both and never
republished.

A Proposal is untrusted input: constructing one never fails on bad numbers. `check_proposal`
names every defect so that a malformed proposal is rejected with reasons, not with an exception.
"""
from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Columns of Proposal.states.
X, Y, YAW, V, W = range(5)
_MAGIC = b'flywheel.proposal.v2\0'


@dataclass(frozen=True, eq=False)
class Proposal:
    """A candidate from a Proposer, in plain data.

    ``states`` is an (N, 5) float64 array of [x, y, yaw, v, w] per trajectory point and ``t_ns``
    the matching int64 times from ``stamp_ns``; ``command`` is the immediate (v, w). ``epoch`` is
    the proposer's session (its start time); ``(epoch, seq)`` orders its proposals.
    """

    proposal_id: str
    proposer_id: str
    seq: int
    frame_id: str
    stamp_ns: int
    t_ns: np.ndarray
    states: np.ndarray
    command: tuple[float, float]
    epoch: int = 1

    @property
    def horizon(self) -> float:
        """Seconds from the stamp to the last trajectory point (0 for an empty trajectory)."""
        return float(self.t_ns[-1]) * 1e-9 if len(self.t_ns) else 0.0

    @property
    def times(self) -> np.ndarray:
        """Trajectory times in seconds from the stamp."""
        return self.t_ns.astype(np.float64) * 1e-9

    def canonical_bytes(self) -> bytes:
        """A byte encoding that is identical for equal proposals on every machine."""
        t_ns = np.ascontiguousarray(self.t_ns, dtype='<i8')
        states = np.ascontiguousarray(self.states, dtype='<f8')
        parts = [_MAGIC]
        for text in (self.frame_id, self.proposal_id, self.proposer_id):
            raw = text.encode('utf-8')
            parts.append(struct.pack('<I', len(raw)) + raw)
        parts.append(struct.pack('<qQQI', self.stamp_ns, self.epoch, self.seq, len(t_ns)))
        parts.append(t_ns.tobytes())
        parts.append(states.tobytes())
        parts.append(struct.pack('<2d', *self.command))
        return b''.join(parts)

    @cached_property
    def digest(self) -> str:
        """Hex sha256 of the canonical encoding (computed once per object)."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def make_proposal(proposal_id: str, proposer_id: str, seq: int, frame_id: str, stamp_ns: int,
                  t_ns, states, command, epoch: int = 1) -> Proposal:
    """Build a Proposal from array-likes, normalising dtypes and shapes (never validating)."""
    states = np.asarray(states, dtype=np.float64).reshape(-1, 5)
    t_ns = np.asarray(t_ns, dtype=np.int64).reshape(-1)
    v, w = command
    return Proposal(proposal_id, proposer_id, int(seq), frame_id, int(stamp_ns), t_ns, states,
                    (float(v), float(w)), int(epoch))


class Defect(enum.Enum):
    """Why a proposal is malformed; the Gate's Reason of the same name mirrors each."""

    NON_FINITE = 'a state or the command is NaN or infinite'
    EMPTY_TRAJECTORY = 'the trajectory has no points'
    NON_MONOTONIC_TIME = 'time_from_start is negative or not strictly increasing'
    TOO_MANY_POINTS = 'the trajectory has more points than allowed'
    WRONG_FRAME = 'the header frame is not the world frame'
    UNKNOWN_PROPOSER = 'the proposer is not trusted'
    SHAPE_MISMATCH = 'times and states differ in length'
    COMMAND_MISMATCH = "the command is not the trajectory's first twist"
    KINEMATIC_MISMATCH = 'a pose is not where the twist before it leads'
    HORIZON_TOO_SHORT = 'the trajectory ends before the command would stop being honoured'
    HORIZON_TOO_LONG = 'the trajectory lasts longer than allowed'
    SAMPLE_GAP = 'two trajectory points are further apart in time than allowed'


@dataclass(frozen=True)
class ProposalLimits:
    """What a well-formed proposal looks like; shared by the Oracle and the Gate."""

    frame_id: str = 'map'
    max_points: int = 200
    allowed_proposers: tuple[str, ...] = ('proposer',)
    # The command must be what the scored trajectory starts with, or its score says nothing.
    command_tolerance: float = 1e-3

    def __post_init__(self):
        if not self.frame_id:
            raise ValueError('frame_id: must not be empty')
        if self.max_points < 1:
            raise ValueError(f'max_points: must be >= 1, got {self.max_points}')
        if not self.command_tolerance >= 0.0:
            raise ValueError(f'command_tolerance: must be >= 0, got {self.command_tolerance}')
        if not self.allowed_proposers:
            raise ValueError('allowed_proposers: must name at least one proposer')


def check_proposal(proposal: Proposal, limits: ProposalLimits) -> list[tuple[Defect, str]]:
    """Every defect of ``proposal`` with a detail naming the offending value; empty when valid."""
    defects: list[tuple[Defect, str]] = []
    if proposal.proposer_id not in limits.allowed_proposers:
        defects.append((Defect.UNKNOWN_PROPOSER, f'proposer_id={proposal.proposer_id!r}'))
    if proposal.frame_id != limits.frame_id:
        defects.append((Defect.WRONG_FRAME,
                        f'frame_id={proposal.frame_id!r}, expected {limits.frame_id!r}'))
    n = len(proposal.t_ns)
    if n == 0:
        defects.append((Defect.EMPTY_TRAJECTORY, 'trajectory has 0 points'))
    if n > limits.max_points:
        defects.append((Defect.TOO_MANY_POINTS, f'{n} points > max_points={limits.max_points}'))
    if len(proposal.states) != n:
        defects.append((Defect.SHAPE_MISMATCH, f'{n} times, {len(proposal.states)} states'))
    bad = ~np.isfinite(proposal.states).all(axis=1) if len(proposal.states) else np.array([], bool)
    if bad.any() or not np.isfinite(proposal.command).all():
        where = f'point {int(np.argmax(bad))}' if bad.any() else 'command'
        defects.append((Defect.NON_FINITE, f'non-finite value at {where}'))
    if n and len(proposal.states) == n and not bad.any() and np.isfinite(proposal.command).all():
        first = proposal.states[0, V:W + 1]
        if np.abs(first - proposal.command).max() > limits.command_tolerance:
            defects.append((Defect.COMMAND_MISMATCH,
                            f'command {proposal.command} vs first twist {tuple(first)}'))
    if n and (proposal.t_ns[0] < 0 or (np.diff(proposal.t_ns) <= 0).any()):
        defects.append((Defect.NON_MONOTONIC_TIME, 'time_from_start must start >= 0 and increase'))
    return defects
