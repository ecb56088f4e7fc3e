"""Oracle and Gate as separate processes: proposal -> signals -> command; a killed Oracle means
stop within command_timeout + one tick."""
from __future__ import annotations

import os
import signal
import time

import pytest
from geometry_msgs.msg import Twist

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.ros import qos, topics
from flywheel.ros.convert import proposal_to_msg
from test.helpers import straight
from test.ros.conftest import wait_matched

pytestmark = pytest.mark.ros

COMMAND_TIMEOUT, TICK = 0.3, 0.02     # config/flywheel.yaml


@pytest.fixture
def loop(probe, start_graph):
    graph = start_graph(['oracle', 'gate'])
    pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    received = dict(signals=probe.collect(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM),
                    decisions=probe.collect(GateDecision, topics.GATE_DECISIONS, qos.STREAM),
                    commands=probe.collect(Twist, topics.CMD_VEL, qos.COMMAND, stamp=True))
    wait_matched(probe, pub)
    # both the Gate and the Oracle subscribe to proposals
    assert probe.spin_until(lambda: pub.get_subscription_count() >= 2, 20.0)
    seq = [1000]

    def send(**kwargs):
        seq[0] += 1
        p = straight(**{'x': 1.5, 'y': 1.0, 'yaw': 0.0, 'v': 0.5, **kwargs}, seq=seq[0],
                     stamp_ns=probe.now_ns())
        pub.publish(proposal_to_msg(p))
        return p

    return graph, send, received


def first(items, proposal_id):
    return next((m for m in items if m.proposal_id == proposal_id), None)


def send_until_scored(probe, send, got, **kwargs):
    """Discovery is not symmetric: the first proposals may reach only one of Oracle and Gate.
    Resend until one has been seen by both (scored, and decided on that score)."""
    for _ in range(50):
        p = send(**kwargs)

        def scored():
            d = first(got['decisions'], p.proposal_id)
            return (first(got['signals'], p.proposal_id) is not None and d is not None
                    and GateDecision.REASON_UNKNOWN_PROPOSAL not in d.reasons
                    and GateDecision.REASON_NO_VERDICT not in d.reasons)
        if probe.spin_until(scored, 1.0):
            return p
    raise AssertionError('no proposal reached both the Oracle and the Gate')


def test_a_safe_proposal_becomes_a_command(probe, loop):
    _, send, got = loop
    p = send_until_scored(probe, send, got)
    signals, decision = first(got['signals'], p.proposal_id), first(got['decisions'], p.proposal_id)
    assert signals.proposal_digest == p.digest and signals.oracle_version == '1.0.0'
    assert signals.safety_score == 1.0 and signals.evaluation_duration.nanosec > 0
    assert decision.action == GateDecision.ACTION_ALLOW and decision.proposal_digest == p.digest
    assert probe.spin_until(lambda: any(c.linear.x == 0.5 for _, c in got['commands']), 2.0)


def test_a_collision_course_is_scored_and_blocked(probe, loop):
    _, send, got = loop
    p = send_until_scored(probe, send, got, x=3.0, y=4.0, v=0.9)
    signals, decision = first(got['signals'], p.proposal_id), first(got['decisions'], p.proposal_id)
    assert signals.collision_risk == 1.0 and signals.evidence[0].rule_id == 'shelf_a'
    assert decision.action == GateDecision.ACTION_BLOCK
    assert GateDecision.REASON_COLLISION_RISK in decision.reasons
    assert not any(c.linear.x == 0.9 for _, c in got['commands'])


def test_killing_the_oracle_stops_the_robot_within_the_deadline(probe, loop):
    graph, send, got = loop
    period = 0.05
    next_send = time.monotonic()

    def keep_proposing(condition, timeout):
        nonlocal next_send
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            if time.monotonic() >= next_send:
                send()
                next_send += period
            probe.executor.spin_once(timeout_sec=0.005)
        return condition()

    def moving():
        return [t for t, c in got['commands'] if c.linear.x != 0.0]

    assert keep_proposing(lambda: len(moving()) >= 10, 20.0), 'the loop never got going'
    oracle = graph.processes['oracle']
    os.kill(oracle.pid, signal.SIGKILL)
    oracle.wait(timeout=5)
    killed = time.monotonic()
    keep_proposing(lambda: any(t > killed and c.linear.x == 0.0 for t, c in got['commands'])
                   and time.monotonic() - killed > 1.0, 3.0)
    last_go = max(moving())
    stops = [t for t, c in got['commands'] if t > last_go and c.linear.x == 0.0]
    assert stops, 'no stop after the Oracle died'
    # measured at this receiver, so DDS delivery of the stop is inside the budget
    assert stops[0] - last_go <= COMMAND_TIMEOUT + TICK
    assert not [t for t in moving() if t > killed + 0.1], 'a command was released without an Oracle'
