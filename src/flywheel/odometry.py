"""Odometry as the safety layer uses it: where the robot is, in which frame, measured when.

The Gate anchors every proposal to it (a trajectory must start where the robot is) and the
Proposer plans from it; both refuse odometry that is missing, in another frame, or stale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from flywheel.kinematics import RobotState


@dataclass(frozen=True)
class Odometry:
    state: RobotState
    stamp_ns: int
    frame_id: str


def odometry_problem(odom: Odometry | None, now_ns: int, frame_id: str,
                     timeout_ns: int) -> str | None:
    """Why ``odom`` cannot be used now (None when it can)."""
    if odom is None:
        return 'no odometry received'
    if odom.frame_id != frame_id:
        return f'odometry in frame {odom.frame_id!r}, expected {frame_id!r}'
    s = odom.state
    if not all(math.isfinite(v) for v in (s.x, s.y, s.yaw, s.v, s.w)):
        return 'odometry holds a non-finite value'
    age = now_ns - odom.stamp_ns
    if age > timeout_ns:
        return f'odometry is {age * 1e-9:.3f}s old (> {timeout_ns * 1e-9:.3f}s)'
    if age < -timeout_ns:
        return f'odometry is stamped {-age * 1e-9:.3f}s in the future'
    return None
