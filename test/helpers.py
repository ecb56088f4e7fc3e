"""Builders for test proposals (plain data, no ROS). Every builder but `remade` returns a
kinematically consistent proposal: each point is exactly where the twist before it leads."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

from flywheel.kinematics import RobotState, constant_twist_rollout, rollout, wrap
from flywheel.proposal import Proposal, make_proposal

DT = 0.1


def straight(x: float, y: float, yaw: float, v: float, points: int = 20, *, seq: int = 1,
             stamp_ns: int = 0, proposer_id: str = 'proposer', frame_id: str = 'map',
             w: float = 0.0) -> Proposal:
    """A proposal holding (v, w) from (x, y, yaw)."""
    states = constant_twist_rollout(RobotState(x, y, yaw), v, w, points, DT)
    t_ns = (np.arange(points) * DT * 1e9).round().astype(np.int64)
    return make_proposal(f'{proposer_id}/{seq}', proposer_id, seq, frame_id, stamp_ns, t_ns,
                         states, (v, w))


def driven(x: float, y: float, yaw: float, twists, dt=DT, *, seq: int = 1,
           stamp_ns: int = 0) -> Proposal:
    """A proposal holding twists[i] (v, w) from point i for dt (scalar or one per gap) from
    (x, y, yaw); its command is the first twist."""
    twists = np.asarray(twists, dtype=np.float64).reshape(-1, 2)
    dt = np.broadcast_to(np.asarray(dt, dtype=np.float64), (len(twists) - 1,))
    t_ns = (np.concatenate([[0.0], np.cumsum(dt)]) * 1e9).round().astype(np.int64)
    return make_proposal(f'proposer/{seq}', 'proposer', seq, 'map', stamp_ns, t_ns,
                         rollout(x, y, yaw, twists, dt), tuple(twists[0]))


def through(waypoints: list[tuple[float, float]], v: float = 0.5, *, seq: int = 1,
            stamp_ns: int = 0, w: float = 1.0, gap: float = DT) -> Proposal:
    """A proposal driving straight legs through these waypoints at v, turning in place at w
    (rad/s) at each corner, with points at most ``gap`` seconds apart."""
    pts = np.asarray(waypoints, dtype=float)
    legs = np.diff(pts, axis=0)
    headings = np.arctan2(legs[:, 1], legs[:, 0])
    twists, dts = [], []
    for k, (leg, heading) in enumerate(zip(legs, headings)):
        turn = wrap(heading - headings[k - 1]) if k else 0.0
        for twist, duration in (((0.0, math.copysign(w, turn)), abs(turn) / w),
                                ((v, 0.0), math.hypot(*leg) / v)):
            pieces = math.ceil(duration / gap - 1e-9)
            if pieces:
                twists += [twist] * pieces
                dts += [duration / pieces] * pieces
    return driven(pts[0, 0], pts[0, 1], headings[0], twists + [twists[-1]], dts, seq=seq,
                  stamp_ns=stamp_ns)


def remade(p: Proposal, **changes) -> Proposal:
    """``p`` with some of t_ns, states, command, stamp_ns, seq changed (never validated)."""
    fields = dict(t_ns=p.t_ns, states=p.states, command=p.command, stamp_ns=p.stamp_ns,
                  seq=p.seq)
    fields.update(changes)
    return make_proposal(p.proposal_id, p.proposer_id, fields['seq'], p.frame_id,
                         fields['stamp_ns'], fields['t_ns'], fields['states'], fields['command'],
                         p.epoch)


def flywheel(*args: str) -> subprocess.CompletedProcess:
    """Run the `flywheel` command line; a non-zero exit's output goes to stderr, so a failing
    test shows what the command said."""
    done = subprocess.run([sys.executable, '-m', 'flywheel.cli', *args], capture_output=True,
                          text=True, timeout=60)
    if done.returncode:
        print(f'flywheel {" ".join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}',
              file=sys.stderr)
    return done
