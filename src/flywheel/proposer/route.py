"""RoutePlanner: the built-in planner, driving a loop of goals with a unicycle pursuit law.

It is a fair but fallible planner: it respects its own speed, yaw-rate, acceleration and curvature
settings and its route avoids the known obstacles, but it knows nothing of keep-out zones or the
Oracle's limits, and under fault injection it cuts corners (``shortcut``) straight through them.
"""
from __future__ import annotations

import math

import numpy as np

from flywheel.kinematics import RobotState, step, wrap
from flywheel.proposer.planner import Plan


class RoutePlanner:
    def __init__(self, route: list, cruise_speed: float = 0.6, max_yaw_rate: float = 1.2,
                 max_acceleration: float = 1.0, max_curvature: float = 4.0,
                 heading_gain: float = 2.5, turn_in_place_angle: float = 0.6,
                 goal_tolerance: float = 0.3, horizon_points: int = 20, dt: float = 0.1):
        goals = np.asarray(route, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != 2 or len(goals) < 2:
            raise ValueError(f'route: expected >= 2 [x, y] goals, got {route!r}')
        if not np.isfinite(goals).all():
            raise ValueError('route: goals must be finite')
        for name, value in (('cruise_speed', cruise_speed), ('max_yaw_rate', max_yaw_rate),
                            ('max_acceleration', max_acceleration), ('dt', dt),
                            ('max_curvature', max_curvature), ('goal_tolerance', goal_tolerance)):
            if not value > 0:
                raise ValueError(f'{name}: must be > 0, got {value}')
        if horizon_points < 2:
            raise ValueError(f'horizon_points: must be >= 2, got {horizon_points}')
        self.goals = goals
        self.cruise_speed, self.max_yaw_rate = cruise_speed, max_yaw_rate
        self.max_acceleration, self.max_curvature = max_acceleration, max_curvature
        self.heading_gain, self.turn_in_place_angle = heading_gain, turn_in_place_angle
        self.goal_tolerance, self.horizon_points, self.dt = goal_tolerance, horizon_points, dt
        self.goal_index = 0

    def plan(self, state: RobotState, shortcut: bool = False) -> Plan:
        """Roll the pursuit law forward from ``state``; the first twist is the command."""
        self.goal_index = self._advance(state.x, state.y, self.goal_index)
        goal = (self.goal_index + (1 if shortcut else 0)) % len(self.goals)
        # Start from the measured speed, but never from outside this planner's own range.
        x, y, yaw, v = state.x, state.y, state.yaw, min(max(state.v, 0.0), self.cruise_speed)
        states = np.empty((self.horizon_points, 5))
        for i in range(self.horizon_points):
            if not shortcut:
                goal = self._advance(x, y, goal)
            v, w = self._control(x, y, yaw, v, self.goals[goal])
            states[i] = (x, y, yaw, v, w)
            x, y, yaw = step(x, y, yaw, v, w, self.dt)
        times = np.arange(self.horizon_points) * self.dt
        return Plan(times, states, (float(states[0, 3]), float(states[0, 4])))

    def _advance(self, x: float, y: float, goal: int) -> int:
        gx, gy = self.goals[goal]
        if math.hypot(gx - x, gy - y) < self.goal_tolerance:
            return (goal + 1) % len(self.goals)
        return goal

    def _control(self, x, y, yaw, v_now, goal) -> tuple[float, float]:
        error = wrap(math.atan2(goal[1] - y, goal[0] - x) - yaw)
        w = max(-self.max_yaw_rate, min(self.max_yaw_rate, self.heading_gain * error))
        turning_in_place = abs(error) > self.turn_in_place_angle
        target = 0.0 if turning_in_place else self.cruise_speed * math.cos(error)
        dv = self.max_acceleration * self.dt
        v = max(v_now - dv, min(v_now + dv, target))
        if v > 0.0:
            # turning in place is fine; turning tighter than max_curvature while moving is not
            w = max(-self.max_curvature * v, min(self.max_curvature * v, w)) if v > 0.05 else w
        return v, w
