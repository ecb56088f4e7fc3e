"""Unicycle kinematics shared by the planner, the cmd_vel adapter, the sim, the proposal checks
and the Oracle's sweep, so all of them agree on what a twist does: a twist (v, w) held for t moves
the robot along an exact arc (a line when w is 0), turning by exactly w*t (never wrapped)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RobotState:
    """Planar pose and body velocities (v forward m/s, w yaw rate rad/s)."""

    x: float
    y: float
    yaw: float
    v: float = 0.0
    w: float = 0.0


def wrap(angle: float) -> float:
    """Angle in [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def step(x: float, y: float, yaw: float, v: float, w: float,
         dt: float) -> tuple[float, float, float]:
    """Exact unicycle motion over dt at constant (v, w) (an arc, or a line when w is ~0)."""
    if abs(w) < 1e-9:
        return x + v * dt * math.cos(yaw), y + v * dt * math.sin(yaw), yaw
    r = v / w
    yaw2 = yaw + w * dt
    return (x + r * (math.sin(yaw2) - math.sin(yaw)), y - r * (math.cos(yaw2) - math.cos(yaw)),
            wrap(yaw2))


def advance(poses: np.ndarray, twists: np.ndarray, dt) -> np.ndarray:
    """Poses (M, 3) of [x, y, yaw] after holding twists (M, 2) of [v, w] for dt (scalar or (M,)).

    The chord form (length v*t*sin(w*t/2)/(w*t/2), heading yaw + w*t/2) is exact for every w,
    including 0, with no division by a small w. Yaw is returned unwrapped (yaw + w*t).
    """
    half = 0.5 * twists[:, 1] * dt
    ratio = np.ones_like(half)
    np.divide(np.sin(half), half, out=ratio, where=half != 0.0)
    chord = twists[:, 0] * dt * ratio
    heading = poses[:, 2] + half
    out = np.empty((len(half), 3))
    out[:, 0] = poses[:, 0] + chord * np.cos(heading)
    out[:, 1] = poses[:, 1] + chord * np.sin(heading)
    out[:, 2] = heading + half
    return out


def rollout(x: float, y: float, yaw: float, twists: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """(N, 5) states [x, y, yaw, v, w] from (x, y, yaw) when twist i (of N) is held for dt[i]
    (N - 1 durations): every point is exactly where the twist before it leads; yaw is wrapped."""
    twists = np.asarray(twists, dtype=np.float64).reshape(-1, 2)
    dt = np.asarray(dt, dtype=np.float64).reshape(-1)
    yaw_at = yaw + np.concatenate([[0.0], np.cumsum(twists[:-1, 1] * dt)])
    # Each step is advance() from a pose whose position is the sum of the chords before it.
    steps = advance(np.column_stack([np.zeros((len(dt), 2)), yaw_at[:-1]]), twists[:-1], dt)
    xs = x + np.concatenate([[0.0], np.cumsum(steps[:, 0])])
    ys = y + np.concatenate([[0.0], np.cumsum(steps[:, 1])])
    wrapped = (yaw_at + np.pi) % (2.0 * np.pi) - np.pi
    return np.column_stack([xs, ys, wrapped, twists])


def constant_twist_rollout(state: RobotState, v: float, w: float, points: int,
                           dt: float) -> np.ndarray:
    """(points, 5) states of [x, y, yaw, v, w] when (v, w) is held from ``state``."""
    return rollout(state.x, state.y, state.yaw, np.tile([v, w], (points, 1)),
                   np.full(max(points - 1, 0), dt))
