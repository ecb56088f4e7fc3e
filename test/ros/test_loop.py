"""Oracle and Gate as separate processes: proposal -> signed signals -> command, and a collision
course scored and blocked. (Killed and frozen Oracles: test_deadline.py.)"""
from __future__ import annotations

import dataclasses
import time

import pytest
from geometry_msgs.msg import Twist

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.auth import load_message_key
from flywheel.ros import qos, topics
from test.conftest import KEYS
from test.helpers import straight
from test.ros.conftest import OdometryFeed, signed_bytes, wait_matched

pytestmark = pytest.mark.ros


@pytest.fixture
def loop(probe, start_graph):
    start_graph(['oracle', 'gate'])
    pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    got = dict(signals=probe.collect(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM),
               decisions=probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS),
               commands=probe.collect(Twist, topics.CMD_VEL, qos.COMMAND))
    wait_matched(probe, pub)
    # both the Gate and the Oracle subscribe to proposals
    assert probe.spin_until(lambda: pub.get_subscription_count() >= 2, 20.0)
    key, epoch, seq = load_message_key(KEYS / 'proposer.pem'), time.time_ns(), [0]
    feeds = []

    def send(x=1.5, y=1.0, v=0.5):
        if not feeds:
            feeds.append(OdometryFeed(probe, x, y, 0.0))
        seq[0] += 1
        p, raw = signed_bytes(dataclasses.replace(
            straight(x, y, 0.0, v, seq=seq[0], stamp_ns=probe.now_ns()), epoch=epoch), key)
        pub.publish(raw)
        return p

    yield send, got
    for feed in feeds:
        feed.close()


def first(items, proposal_id):
    return next((m for m in items if m.proposal_id == proposal_id), None)


def send_until_scored(probe, send, got, **kwargs):
    """Discovery is not symmetric: the first proposals may reach only one of Oracle and Gate, or
    reach the Oracle late (it then sheds them unscored); a verdict from a cold process can reach
    the Gate after signal_timeout, and the first proposals can reach the Gate before the odometry
    feed's first message (the Gate then rightly blocks them). Resend until one has been scored by
    the Oracle and decided by the Gate on that score, in time and anchored."""
    not_ready = {GateDecision.REASON_STALE_VERDICT, GateDecision.REASON_STALE_PROPOSAL,
                 GateDecision.REASON_STALE_ODOMETRY}
    for _ in range(50):
        p = send(**kwargs)

        def scored():
            s, d = first(got['signals'], p.proposal_id), first(got['decisions'], p.proposal_id)
            return (s is not None and s.evidence_status != SignalsMsg.EVIDENCE_SHED
                    and d is not None and len(d.signals) == 1 and not not_ready & set(d.reasons))
        if probe.spin_until(scored, 1.0):
            return p
    raise AssertionError('no proposal reached both the Oracle and the Gate')


def test_a_safe_proposal_becomes_a_command(probe, loop):
    send, got = loop
    p = send_until_scored(probe, send, got)
    signals, decision = first(got['signals'], p.proposal_id), first(got['decisions'], p.proposal_id)
    assert signals.proposal_digest == p.digest and signals.oracle_version == '1.0.0'
    assert signals.safety_score == 1.0 and signals.evaluation_duration.nanosec > 0
    assert len(signals.signature) == 64 and signals.scored_hold >= 0.32
    assert decision.action == GateDecision.ACTION_ALLOW and decision.proposal_digest == p.digest
    assert probe.spin_until(lambda: any(c.linear.x == 0.5 for c in got['commands']), 2.0)


def test_a_collision_course_is_scored_and_blocked(probe, loop):
    send, got = loop
    p = send_until_scored(probe, send, got, x=3.0, y=4.0, v=0.9)
    signals, decision = first(got['signals'], p.proposal_id), first(got['decisions'], p.proposal_id)
    assert signals.collision_risk == 1.0 and signals.evidence[0].rule_id == 'shelf_a'
    assert decision.action in (GateDecision.ACTION_BLOCK, GateDecision.ACTION_FALLBACK)
    assert GateDecision.REASON_COLLISION_RISK in decision.reasons
    assert not any(c.linear.x == 0.9 for c in got['commands'])
