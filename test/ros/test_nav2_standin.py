"""The Gate behind a Nav2-style controller, without Nav2: a stand-in controller publishes Twist at
20 Hz (0.5 m/s straight ahead) into the Proposer in adapter mode; the Oracle, the Gate and the
sim are real processes (test/ros/standin.py). Toward an obstacle the robot must be stopped
within nav2_collision_monitor's dataset bar (<= 0.6 s from the Gate's first refusal to zero
speed in odometry) and held there while the controller keeps pushing; on a free corridor no stop
judged on risk may happen at all (the bar is <= 5 % false stops; over these few runs one would
exceed it). A stop only for lateness (standin.LATE_REASONS: the Gate failing closed because the
machine starved the Oracle) is not a false judgement; it is reported, and the free runs must
still cover 80 % of their distance.
bench/nav2_stop.py measures the same over many runs.

Also: the adapter takes the controller's twist as Twist or, with enable_stamped_cmd_vel (Nav2's
parameter, true by default from Kilted on), as TwistStamped."""
from __future__ import annotations

import math
import os

import pytest
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry

from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.ros import qos, topics
from test.conftest import CONFIG
from test.ros import standin
from test.ros.conftest import wait_matched

pytestmark = pytest.mark.ros

STOP_BAR = 0.6              # s, nav2_collision_monitor's dataset bar
FALSE_STOP_BAR = 0.05
OBSTACLE_RUNS, FREE_RUNS = 2, 3


@pytest.fixture
def stand_in():
    s = standin.StandIn(int(os.environ['ROS_DOMAIN_ID']))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def gated(start_graph):
    """Oracle, Gate and the adapter-mode Proposer, running for the whole test."""
    return start_graph(['oracle', 'gate', 'proposer'], {'proposer': {'mode': 'adapter'}})


def sim_runner(start_graph, tmp_path, start):
    world = standin.world_with_start(CONFIG / 'world.yaml', tmp_path, start)
    return (lambda: start_graph(['sim'], {'sim': {'world_path': str(world)}}),
            lambda graph: graph.stop())


@pytest.mark.slow
def test_a_stand_in_controller_is_stopped_before_the_obstacle_and_never_on_a_free_run(
        stand_in, gated, start_graph, tmp_path):
    runs = []
    for _ in range(OBSTACLE_RUNS):
        runs.append(stand_in.run('obstacle', standin.OBSTACLE_START,
                                 *sim_runner(start_graph, tmp_path, standin.OBSTACLE_START)))
    for _ in range(FREE_RUNS):
        runs.append(stand_in.run('free', standin.FREE_START,
                                 *sim_runner(start_graph, tmp_path, standin.FREE_START)))
    report = '\n'.join(f'{r.kind}: moved {r.moved}, stop {r.time_to_stop}, stops {r.stops}, '
                       f'starved {r.starved}, {r.distance:.2f} m, {r.notes}' for r in runs)
    assert all(r.moved for r in runs), report
    assert not any(r.collided for r in runs), report
    obstacle = [r for r in runs if r.kind == 'obstacle']
    assert all(r.time_to_stop is not None and r.time_to_stop <= STOP_BAR for r in obstacle), report
    assert all(r.stayed_stopped for r in obstacle), report
    free = [r for r in runs if r.kind == 'free']
    assert all(r.distance >= 0.8 * standin.SPEED * standin.FREE_SECONDS for r in free), report
    false_stop_rate = sum(1 for r in free if r.stops) / len(free)
    assert false_stop_rate <= FALSE_STOP_BAR, report


def odometry(probe, x: float, y: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = probe.node.get_clock().now().to_msg()    # fresh: older is not planned from
    msg.header.frame_id = 'map'
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.w = 1.0
    return msg


@pytest.mark.parametrize('stamped', [False, True], ids=['Twist', 'TwistStamped'])
def test_the_adapter_takes_the_controller_type_it_is_configured_for(probe, start_graph, stamped):
    start_graph(['proposer'], {'proposer': {'mode': 'adapter',
                                            'enable_stamped_cmd_vel': stamped}})
    proposals = probe.collect(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    controller = probe.node.create_publisher(TwistStamped if stamped else Twist,
                                             topics.CMD_VEL_IN, qos.COMMAND)
    wait_matched(probe, controller)
    wait_matched(probe, odom)
    # one type per topic: the adapter subscribes exactly the one it is configured for (a
    # publisher of the other type would never match, silently)
    subscribed = {i.topic_type for i in probe.node.get_subscriptions_info_by_topic(
        probe.node.resolve_topic_name(topics.CMD_VEL_IN))}
    assert subscribed == {'geometry_msgs/msg/TwistStamped' if stamped
                          else 'geometry_msgs/msg/Twist'}

    def command(v: float):
        msg = TwistStamped() if stamped else Twist()
        twist = msg.twist if stamped else msg
        if stamped:
            msg.header.frame_id = 'base_link'
            msg.header.stamp = probe.node.get_clock().now().to_msg()
        twist.linear.x, twist.angular.z = v, 0.2
        return msg

    def ask():
        odom.publish(odometry(probe, 2.0, 3.0))
        probe.spin_for(0.05)
        controller.publish(command(0.4))
        return probe.spin_until(lambda: proposals, 1.0)

    assert any(ask() for _ in range(20)), 'no proposal from the adapter'
    p = proposals[-1]
    assert (p.command.linear.x, p.command.angular.z) == (0.4, 0.2)
    # the held twist, predicted along its exact arc (radius 2 m) from the odometry's pose
    end = p.trajectory[-1]
    t = end.time_from_start.sec + end.time_from_start.nanosec * 1e-9
    assert math.isclose(end.pose.position.x, 2.0 + 2.0 * math.sin(0.2 * t), abs_tol=1e-9)
    assert math.isclose(end.pose.position.y, 3.0 + 2.0 * (1 - math.cos(0.2 * t)), abs_tol=1e-9)
