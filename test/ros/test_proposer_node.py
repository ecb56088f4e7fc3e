"""The Proposer node in adapter mode turns an external cmd_vel into a forward-integrated Proposal;
in planner mode it proposes along its route from odometry; it signs what it proposes, and
proposes nothing from stale odometry or odometry in another frame."""
from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message

from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.auth import load_message_key
from flywheel.ros import qos, topics
from flywheel.ros.convert import to_time
from flywheel.wire import decode_proposal
from test.conftest import KEYS
from test.ros.conftest import health, wait_matched

pytestmark = pytest.mark.ros


def odometry(probe, x, y, frame='map', age_s=0.0):
    msg = Odometry()
    msg.header.frame_id = frame
    msg.header.stamp = to_time(probe.now_ns() - int(age_s * 1e9))
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.w = 1.0
    return msg


def test_adapter_mode_predicts_the_held_twist(probe, start_graph):
    start_graph(['proposer'], {'proposer': {'mode': 'adapter'}})
    proposals = probe.collect(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    external = probe.node.create_publisher(Twist, topics.CMD_VEL_IN, qos.COMMAND)
    wait_matched(probe, external)
    wait_matched(probe, odom)

    def ask():
        odom.publish(odometry(probe, 2.0, 3.0))
        probe.spin_for(0.05)
        cmd = Twist()
        cmd.linear.x = 0.4
        external.publish(cmd)
        return probe.spin_until(lambda: proposals, 1.0)

    assert any(ask() for _ in range(20)), 'no proposal from the adapter'
    p = proposals[-1]
    assert p.command.linear.x == 0.4 and p.proposer_id == 'proposer'
    assert len(p.trajectory) == 20 and p.header.frame_id == 'map'
    end = p.trajectory[-1]
    assert math.isclose(end.pose.position.x, 2.0 + 0.4 * 1.9) and end.pose.position.y == 3.0
    assert end.time_from_start.sec == 1 and end.time_from_start.nanosec == 900_000_000


def test_planner_mode_proposes_along_the_route(probe, start_graph):
    start_graph(['proposer'])
    proposals = probe.collect(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    wait_matched(probe, odom)

    def ask():
        odom.publish(odometry(probe, 1.5, 1.0))
        return probe.spin_until(lambda: len(proposals) >= 3, 0.5)

    assert any(ask() for _ in range(40)), 'no proposals from the planner'
    seqs = [p.seq for p in proposals]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert proposals[-1].command.linear.x > 0.0        # from the start, east to (2, 1)
    # signed with the proposer's key, over the digest the Gate computes from these bytes
    read = decode_proposal(serialize_message(proposals[-1]))
    key = load_message_key(KEYS / 'proposer.pem')
    assert read.key_id == key.key_id
    key.private.public_key().verify(read.signature, read.signing_bytes())


@pytest.mark.parametrize('frame, age_s', [('odom', 0.0), ('map', 1.0)])
def test_no_proposal_from_odometry_in_another_frame_or_stale(probe, start_graph, frame, age_s):
    start_graph(['proposer'])
    proposals = probe.collect(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    reports = probe.collect(DiagnosticArray, '/diagnostics', 10)
    odom = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    wait_matched(probe, odom)

    def refused():
        odom.publish(odometry(probe, 1.5, 1.0, frame, age_s))
        return probe.spin_until(lambda: any(
            'not proposing' in s.message for s in health(reports, 'proposer')), 0.5)
    assert any(refused() for _ in range(40))
    assert not proposals
