"""Unicycle kinematics shared by the planner, the cmd_vel adapter and the sim, so all three agree
on what a twist does."""
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


def constant_twist_rollout(state: RobotState, v: float, w: float, points: int,
                           dt: float) -> np.ndarray:
    """(points, 5) states of [x, y, yaw, v, w] when (v, w) is held from ``state``."""
    out = np.empty((points, 5))
    x, y, yaw = state.x, state.y, state.yaw
    for i in range(points):
        out[i] = (x, y, yaw, v, w)
        x, y, yaw = step(x, y, yaw, v, w, dt)
    return out
