"""Builders for test proposals (plain data, no ROS)."""
from __future__ import annotations

import numpy as np

from flywheel.kinematics import RobotState, constant_twist_rollout
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


def through(waypoints: list[tuple[float, float]], v: float = 0.5, *, seq: int = 1,
            stamp_ns: int = 0) -> Proposal:
    """A proposal visiting exactly these waypoints (heading along each leg), one point each."""
    pts = np.asarray(waypoints, dtype=float)
    legs = np.diff(pts, axis=0)
    yaw = np.arctan2(legs[:, 1], legs[:, 0])
    yaw = np.append(yaw, yaw[-1])
    dist = np.append(np.hypot(legs[:, 0], legs[:, 1]), 0.0)
    t = np.concatenate([[0.0], np.cumsum(dist[:-1] / v)])
    states = np.column_stack([pts, yaw, np.full(len(pts), v), np.zeros(len(pts))])
    return make_proposal(f'proposer/{seq}', 'proposer', seq, 'map', stamp_ns,
                         (t * 1e9).round().astype(np.int64), states, (v, 0.0))
