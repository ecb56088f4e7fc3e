"""TwistAdapter: turns an external planner's cmd_vel (e.g. Nav2's controller) into a Plan.

The external controller only says what to do now; the adapter predicts what happens if the twist
is held for the horizon, which is what the Oracle then scores. A twist that keeps changing is
re-proposed on every message, so the prediction is always that of the latest command.
"""
from __future__ import annotations

import numpy as np

from flywheel.kinematics import RobotState, constant_twist_rollout
from flywheel.proposer.planner import Plan


class TwistAdapter:
    def __init__(self, horizon_points: int = 20, dt: float = 0.1):
        if horizon_points < 1 or not dt > 0:
            raise ValueError(f'adapter: need horizon_points >= 1 and dt > 0, got '
                             f'{horizon_points}, {dt}')
        self.horizon_points, self.dt = horizon_points, dt
        self.twist: tuple[float, float] | None = None

    def plan(self, state: RobotState, shortcut: bool = False) -> Plan:
        """The held-twist prediction; a stop when no external command has arrived yet."""
        v, w = self.twist if self.twist is not None else (0.0, 0.0)
        states = constant_twist_rollout(state, v, w, self.horizon_points, self.dt)
        return Plan(np.arange(self.horizon_points) * self.dt, states, (v, w))
