"""The Gate node over real DDS: only verdicts that bind release a command; bad input is BLOCKed;
with nothing approved it publishes stop on its own clock."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from geometry_msgs.msg import Twist

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.oracle.oracle import Oracle
from flywheel.proposal import ProposalLimits, make_proposal
from flywheel.ros import qos, topics
from flywheel.ros.convert import proposal_to_msg, signals_to_msg
from test.helpers import straight
from test.ros.conftest import wait_matched

pytestmark = pytest.mark.ros


@pytest.fixture
def gate_io(probe, start_graph, spec):
    start_graph(['gate'])
    io = dataclasses.make_dataclass('GateIO', ['probe', 'proposals', 'signals', 'commands',
                                               'decisions', 'oracle', 'seq'])(
        probe,
        probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM),
        probe.node.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM),
        probe.collect(Twist, topics.CMD_VEL, qos.COMMAND),
        probe.collect(GateDecision, topics.GATE_DECISIONS, qos.STREAM),
        Oracle(spec, ProposalLimits()), [100])
    wait_matched(probe, io.proposals)
    wait_matched(probe, io.signals)
    assert probe.spin_until(lambda: io.commands, 20.0), 'the gate never published'
    handshake(io)
    return io


def handshake(io) -> None:
    """Discovery is not symmetric: make sure the Gate hears both our proposals and our verdicts
    (an untrusted proposer and a verdict for no proposal are each decided at once)."""
    for topic in ('proposals', 'signals'):
        for attempt in range(100):
            ghost = straight(1.5, 1.0, 0.0, 0.5, seq=attempt, proposer_id='handshake',
                             stamp_ns=io.probe.now_ns())
            if topic == 'proposals':
                io.proposals.publish(proposal_to_msg(ghost))
            else:
                io.signals.publish(signals_to_msg(io.oracle.evaluate(ghost), io.probe.now_ns(),
                                                  'map', 0))
            if io.probe.spin_until(
                    lambda: any(d.proposal_id == ghost.proposal_id for d in io.decisions), 0.2):
                break
        else:
            raise AssertionError(f'the gate never heard our {topic}')
    io.decisions.clear()


def propose(io, **kwargs):
    io.seq[0] += 1
    p = straight(1.5, 1.0, 0.0, 0.5, seq=io.seq[0], stamp_ns=io.probe.now_ns(), **kwargs)
    io.proposals.publish(proposal_to_msg(p))
    return p


def send_verdict(io, p, **changes):
    v = dataclasses.replace(io.oracle.evaluate(p), **changes)
    stamp = changes.pop('stamp_ns', io.probe.now_ns())
    msg = signals_to_msg(v, stamp, 'map', 0)
    io.signals.publish(msg)
    return msg


def decision_for(io, p, timeout=5.0):
    def found():
        return [d for d in io.decisions if d.proposal_id == p.proposal_id]
    assert io.probe.spin_until(found, timeout), f'no decision for {p.proposal_id}'
    return found()[0]


def moving(commands):
    return [c for c in commands if c.linear.x != 0.0 or c.angular.z != 0.0]


def test_with_nothing_approved_the_gate_publishes_stop(gate_io):
    gate_io.probe.spin_for(0.2)
    assert gate_io.commands and not moving(gate_io.commands)


def test_an_honest_verdict_releases_exactly_that_command(gate_io):
    p = propose(gate_io)
    gate_io.probe.spin_for(0.05)
    send_verdict(gate_io, p)
    d = decision_for(gate_io, p)
    assert d.action == GateDecision.ACTION_ALLOW and d.proposal_digest == p.digest
    assert d.command_published and d.command.linear.x == 0.5
    assert gate_io.probe.spin_until(lambda: moving(gate_io.commands), 2.0)
    assert moving(gate_io.commands)[0].linear.x == 0.5


@pytest.mark.parametrize('forgery, reason', [
    (dict(proposal_digest='0' * 64), GateDecision.REASON_DIGEST_MISMATCH),
    (dict(oracle_version='0.0.1-rogue'), GateDecision.REASON_UNKNOWN_ORACLE_VERSION),
    (dict(stamp_ns=-1), GateDecision.REASON_STALE_VERDICT),
])
def test_a_verdict_that_does_not_bind_releases_nothing(gate_io, forgery, reason):
    p = propose(gate_io)
    gate_io.probe.spin_for(0.05)
    if forgery.get('stamp_ns') == -1:
        forgery['stamp_ns'] = gate_io.probe.now_ns() - 2_000_000_000
    send_verdict(gate_io, p, **forgery)
    d = decision_for(gate_io, p)
    assert d.action == GateDecision.ACTION_BLOCK and reason in d.reasons
    assert not d.command_published
    gate_io.probe.spin_for(0.3)
    assert not moving(gate_io.commands)


def test_a_replayed_verdict_releases_nothing_more(gate_io):
    p = propose(gate_io)
    gate_io.probe.spin_for(0.05)
    verdict = send_verdict(gate_io, p)
    decision_for(gate_io, p)
    assert gate_io.probe.spin_until(lambda: moving(gate_io.commands), 2.0)
    released = len(moving(gate_io.commands))
    gate_io.signals.publish(verdict)                 # the same verdict again
    gate_io.probe.spin_for(0.5)
    assert len(moving(gate_io.commands)) == released
    assert len([d for d in gate_io.decisions if d.proposal_id == p.proposal_id]) == 1


def test_a_verdict_for_a_proposal_never_seen_is_blocked(gate_io):
    ghost = straight(1.5, 1.0, 0.0, 0.5, seq=1, stamp_ns=gate_io.probe.now_ns())
    send_verdict(gate_io, ghost)
    d = decision_for(gate_io, ghost)
    assert GateDecision.REASON_UNKNOWN_PROPOSAL in d.reasons and not d.command_published


def bad_msg(kind: str, io) -> ProposalMsg:
    io.seq[0] += 1
    seq, now = io.seq[0], io.probe.now_ns()
    if kind == 'empty':
        return proposal_to_msg(make_proposal(f'proposer/{seq}', 'proposer', seq, 'map', now, [],
                                             np.empty((0, 5)), (0.0, 0.0)))
    p = straight(1.5, 1.0, 0.0, 0.5, seq=seq, stamp_ns=now,
                 points=201 if kind == 'too_many' else 20,
                 frame_id='odom' if kind == 'frame' else 'map',
                 proposer_id='mallory' if kind == 'proposer' else 'proposer')
    msg = proposal_to_msg(p)
    if kind == 'nan':
        msg.trajectory[4].pose.position.x = math.nan
    elif kind == 'inf':
        msg.command.linear.x = math.inf
    elif kind == 'time':
        msg.trajectory[5].time_from_start = msg.trajectory[3].time_from_start
    return msg


@pytest.mark.parametrize('kind, reason', [
    ('nan', GateDecision.REASON_NON_FINITE), ('inf', GateDecision.REASON_NON_FINITE),
    ('empty', GateDecision.REASON_EMPTY_TRAJECTORY),
    ('time', GateDecision.REASON_NON_MONOTONIC_TIME),
    ('too_many', GateDecision.REASON_TOO_MANY_POINTS),
    ('frame', GateDecision.REASON_WRONG_FRAME),
    ('proposer', GateDecision.REASON_UNKNOWN_PROPOSER)])
def test_malformed_proposals_are_blocked_with_a_reason(gate_io, kind, reason):
    msg = bad_msg(kind, gate_io)
    gate_io.proposals.publish(msg)
    assert gate_io.probe.spin_until(
        lambda: any(d.proposal_id == msg.proposal_id for d in gate_io.decisions), 5.0)
    d = next(d for d in gate_io.decisions if d.proposal_id == msg.proposal_id)
    assert d.action == GateDecision.ACTION_BLOCK and reason in d.reasons
    assert not d.command_published and not moving(gate_io.commands)
