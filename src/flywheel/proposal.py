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
import math
import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from flywheel.kinematics import advance

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
    # Who signed signing_bytes() and the Ed25519 signature ('' and b'' when unsigned); not part
    # of the digest.
    key_id: str = ''
    signature: bytes = b''

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

    def signing_bytes(self) -> bytes:
        """What a proposer signs: the digest, under its own domain."""
        return b'flywheel.proposal.signature.v1\0' + bytes.fromhex(self.digest)

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
    """What a well-formed proposal looks like; shared by the Oracle and the Gate.

    The motion model every check assumes: between points i and i+1 the robot holds twist i for
    their time difference (an exact arc, flywheel.kinematics.advance). The poses are what the
    Oracle scores and the twists are what the Gate executes, so a proposal whose poses are not
    where its twists lead (beyond the tolerances) says nothing about what the robot will do.
    """

    frame_id: str = 'map'
    max_points: int = 200
    allowed_proposers: tuple[str, ...] = ('proposer',)
    # The command must be what the scored trajectory starts with, or its score says nothing.
    command_tolerance: float = 1e-3
    # The trajectory must last at least as long as its command may be honoured (s): the Gate sets
    # its hold time, the Oracle its spec's command_hold.
    min_horizon: float = 0.0
    max_horizon: float = 10.0
    # Longest time between two points (s): bounds how far one twist is extrapolated.
    max_sample_gap: float = 0.5
    # How far (m, rad) a pose may lie from where the twist before it leads; the Oracle's swept
    # region is inflated by these, so they must stay small against obstacle distances.
    kinematic_tolerance: float = 0.02
    kinematic_yaw_tolerance: float = 0.02

    def __post_init__(self):
        if not self.frame_id:
            raise ValueError('frame_id: must not be empty')
        if self.max_points < 1:
            raise ValueError(f'max_points: must be >= 1, got {self.max_points}')
        if not self.command_tolerance >= 0.0:
            raise ValueError(f'command_tolerance: must be >= 0, got {self.command_tolerance}')
        if not self.allowed_proposers:
            raise ValueError('allowed_proposers: must name at least one proposer')
        if not 0.0 <= self.min_horizon < math.inf:
            raise ValueError(f'min_horizon: must be finite and >= 0, got {self.min_horizon}')
        if not (self.max_horizon > 0.0 and self.min_horizon <= self.max_horizon < math.inf):
            raise ValueError(f'max_horizon: must be finite, > 0 and >= min_horizon '
                             f'({self.min_horizon}), got {self.max_horizon}')
        if not 0.0 < self.max_sample_gap < math.inf:
            raise ValueError(f'max_sample_gap: must be finite and > 0, got {self.max_sample_gap}')
        if not 0.0 <= self.kinematic_tolerance < math.inf:
            raise ValueError(f'kinematic_tolerance: must be finite and >= 0, '
                             f'got {self.kinematic_tolerance}')
        if not 0.0 <= self.kinematic_yaw_tolerance <= math.pi:
            raise ValueError(f'kinematic_yaw_tolerance: must be in [0, pi], '
                             f'got {self.kinematic_yaw_tolerance}')


def check_proposal(proposal: Proposal, limits: ProposalLimits) -> list[tuple[Defect, str]]:
    """Every defect of ``proposal`` with a detail naming the offending value; empty when valid.

    Times are compared in integer nanoseconds (no overflow: only ordered, non-negative times are
    subtracted), so a horizon exactly at a limit is accepted on every machine.
    """
    defects: list[tuple[Defect, str]] = []
    if proposal.proposer_id not in limits.allowed_proposers:
        defects.append((Defect.UNKNOWN_PROPOSER, f'proposer_id={proposal.proposer_id!r}'))
    if proposal.frame_id != limits.frame_id:
        defects.append((Defect.WRONG_FRAME,
                        f'frame_id={proposal.frame_id!r}, expected {limits.frame_id!r}'))
    t_ns, states = proposal.t_ns, proposal.states
    n = len(t_ns)
    if n == 0:
        defects.append((Defect.EMPTY_TRAJECTORY, 'trajectory has 0 points'))
    if n > limits.max_points:
        defects.append((Defect.TOO_MANY_POINTS, f'{n} points > max_points={limits.max_points}'))
    shaped = len(states) == n
    if not shaped:
        defects.append((Defect.SHAPE_MISMATCH, f'{n} times, {len(states)} states'))
    v, w = proposal.command
    finite = bool(np.isfinite(states).all()) and math.isfinite(v) and math.isfinite(w)
    if not finite:
        bad = ~np.isfinite(states).all(axis=1)
        where = f'point {int(np.argmax(bad))}' if bad.any() else 'command'
        defects.append((Defect.NON_FINITE, f'non-finite value at {where}'))
    if n and shaped and finite:
        first = float(states[0, V]), float(states[0, W])
        if max(abs(first[0] - v), abs(first[1] - w)) > limits.command_tolerance:
            defects.append((Defect.COMMAND_MISMATCH,
                            f'command {proposal.command} vs first twist {first}'))
    if not n:
        return defects
    if t_ns[0] != 0:
        defects.append((Defect.NON_MONOTONIC_TIME,
                        f'time_from_start[0]={int(t_ns[0])} ns, must be 0'))
        return defects
    stalled = t_ns[1:] <= t_ns[:-1]
    if stalled.any():
        i = int(np.argmax(stalled)) + 1
        defects.append((Defect.NON_MONOTONIC_TIME,
                        f'time_from_start[{i}]={int(t_ns[i])} ns <= [{i - 1}]={int(t_ns[i - 1])}'))
        return defects
    defects += _timing(t_ns, limits)
    if shaped and finite and n > 1:
        defects += _kinematics(states, t_ns, limits)
    return defects


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _timing(t_ns: np.ndarray, limits: ProposalLimits) -> list[tuple[Defect, str]]:
    """Horizon and sample-gap defects of strictly increasing times starting at 0."""
    defects = []
    horizon = int(t_ns[-1])
    if horizon < _ns(limits.min_horizon):
        defects.append((Defect.HORIZON_TOO_SHORT, f'horizon {horizon * 1e-9:.9g} s at point '
                        f'{len(t_ns) - 1} < min_horizon={limits.min_horizon}'))
    if horizon > _ns(limits.max_horizon):
        defects.append((Defect.HORIZON_TOO_LONG, f'horizon {horizon * 1e-9:.9g} s at point '
                        f'{len(t_ns) - 1} > max_horizon={limits.max_horizon}'))
    gaps = t_ns[1:] - t_ns[:-1]
    if len(gaps) and gaps.max() > _ns(limits.max_sample_gap):
        i = int(np.argmax(gaps))
        defects.append((Defect.SAMPLE_GAP, f'{gaps[i] * 1e-9:.9g} s from point {i} to '
                        f'{i + 1} > max_sample_gap={limits.max_sample_gap}'))
    return defects


def _kinematics(states: np.ndarray, t_ns: np.ndarray,
                limits: ProposalLimits) -> list[tuple[Defect, str]]:
    """KINEMATIC_MISMATCH at the first point not where the twist before it leads."""
    dt = (t_ns[1:] - t_ns[:-1]) * 1e-9
    led = advance(states[:-1, X:YAW + 1], states[:-1, V:W + 1], dt)
    miss = np.hypot(led[:, 0] - states[1:, X], led[:, 1] - states[1:, Y])
    yaw_miss = np.abs((led[:, 2] - states[1:, YAW] + np.pi) % (2.0 * np.pi) - np.pi)
    off = (miss > limits.kinematic_tolerance) | (yaw_miss > limits.kinematic_yaw_tolerance)
    if not off.any():
        return []
    i = int(np.argmax(off))
    return [(Defect.KINEMATIC_MISMATCH,
             f'point {i + 1} is {miss[i]:.6g} m and {yaw_miss[i]:.6g} rad from where twist {i} '
             f'leads (kinematic_tolerance={limits.kinematic_tolerance}, '
             f'kinematic_yaw_tolerance={limits.kinematic_yaw_tolerance})')]
