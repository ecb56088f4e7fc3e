import math

import pytest

from flywheel.kinematics import RobotState
from flywheel.proposer.adapter import TwistAdapter


def test_holds_the_external_twist_over_the_horizon():
    adapter = TwistAdapter(horizon_points=11, dt=0.1)
    adapter.twist = (0.5, 0.0)
    plan = adapter.plan(RobotState(1.0, 2.0, 0.0))
    assert plan.command == (0.5, 0.0)
    assert plan.states[-1, 0] == pytest.approx(1.5) and plan.states[-1, 1] == pytest.approx(2.0)


def test_an_arc_is_integrated_exactly():
    adapter = TwistAdapter(horizon_points=11, dt=0.1)
    adapter.twist = (0.5, 0.5)                        # radius 1 m, quarter turn takes pi s
    plan = adapter.plan(RobotState(0.0, 0.0, 0.0))
    x, y, yaw = plan.states[-1, :3]                   # after 1 s: 0.5 rad around the circle
    assert (x, y, yaw) == pytest.approx((math.sin(0.5), 1 - math.cos(0.5), 0.5))


def test_no_external_command_yet_proposes_a_stop():
    assert TwistAdapter().plan(RobotState(0.0, 0.0, 0.0)).command == (0.0, 0.0)


def test_bad_horizon():
    with pytest.raises(ValueError, match='horizon'):
        TwistAdapter(horizon_points=0)
