"""The built-in planner: follows its route within its own limits, and cuts corners on request."""
import math

import numpy as np
import pytest

from flywheel.kinematics import RobotState
from flywheel.proposer.route import RoutePlanner

ROUTE = [[2.0, 1.0], [10.5, 1.0], [10.5, 7.0], [2.0, 7.0]]


def test_plan_starts_with_its_command_and_respects_its_limits():
    planner = RoutePlanner(ROUTE)
    plan = planner.plan(RobotState(1.5, 1.0, 0.0))
    assert plan.command == (plan.states[0, 3], plan.states[0, 4])
    assert len(plan.times) == 20 and np.allclose(np.diff(plan.times), 0.1)
    assert plan.states[:, 3].max() <= 0.6 + 1e-9
    assert np.abs(np.diff(plan.states[:, 3])).max() <= 1.0 * 0.1 + 1e-9
    moving = plan.states[:, 3] > 0.05
    assert (np.abs(plan.states[moving, 4]) <= 4.0 * plan.states[moving, 3] + 1e-9).all()


def test_turns_in_place_towards_a_goal_behind():
    plan = RoutePlanner(ROUTE).plan(RobotState(2.0, 4.0, math.pi / 2))  # goal 0 is behind
    assert plan.command[0] == 0.0 and plan.command[1] != 0.0


def test_measured_overspeed_is_not_fed_back():
    plan = RoutePlanner(ROUTE).plan(RobotState(3.0, 1.0, 0.0, v=5.0))
    assert plan.command[0] <= 0.6


def test_advances_to_the_next_goal_when_close():
    planner = RoutePlanner(ROUTE)
    planner.plan(RobotState(2.1, 1.0, 0.0))
    assert planner.goal_index == 1


def test_shortcut_heads_for_the_goal_after_next():
    planner = RoutePlanner(ROUTE)
    planner.goal_index = 1                  # driving east along y = 1 towards (10.5, 1)
    state = RobotState(3.0, 1.0, 0.0)
    normal, cut = planner.plan(state), planner.plan(state, shortcut=True)
    assert normal.command[1] == pytest.approx(0.0, abs=1e-9)
    assert cut.command[1] > 0.0            # turning left, towards (10.5, 7)


@pytest.mark.parametrize('kwargs, field', [
    (dict(route=[[0, 0]]), 'route'), (dict(route=[[0, 0], [1, math.nan]]), 'route'),
    (dict(route=ROUTE, cruise_speed=0), 'cruise_speed'),
    (dict(route=ROUTE, horizon_points=1), 'horizon_points')])
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        RoutePlanner(**kwargs)
