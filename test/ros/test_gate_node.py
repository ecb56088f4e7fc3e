"""The Gate node over real DDS: only verdicts that bind release a command; bad input is BLOCKed
with a reason and never converted when oversize; ignored verdicts are recorded; with nothing
approved it publishes stop on its own clock; stamped output; a stop on the way out."""
from __future__ import annotations

import dataclasses
import math
import signal

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.serialization import deserialize_message, serialize_message

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from flywheel.ros.convert import from_time, signals_to_msg, to_time
from flywheel.wire import encode_proposal
from test.helpers import straight
from test.ros.conftest import GateIO, decision_for, health, moving, values

pytestmark = pytest.mark.ros


def test_with_nothing_approved_the_gate_publishes_stop(gate_io):
    n = len(gate_io.commands)
    assert gate_io.probe.spin_until(lambda: len(gate_io.commands) >= n + 5, 2.0)
    assert not moving(gate_io.commands)


def test_an_honest_verdict_releases_exactly_that_command(gate_io: GateIO):
    p = gate_io.propose()
    gate_io.verdict(p)
    d = decision_for(gate_io, p)
    assert d.action == GateDecision.ACTION_ALLOW and d.proposal_digest == p.digest
    assert d.command_published and d.command.linear.x == 0.5
    assert d.subject == GateDecision.SUBJECT_PROPOSAL and d.seq >= 1 and d.epoch > 0
    assert len(d.signals) == 1 and d.signals[0].proposal_digest == p.digest
    assert gate_io.probe.spin_until(lambda: moving(gate_io.commands), 2.0)
    assert moving(gate_io.commands)[0].linear.x == 0.5


@pytest.mark.parametrize('forgery, reason', [
    (dict(oracle_version='0.0.1-rogue'), GateDecision.REASON_UNKNOWN_ORACLE_VERSION),
    (dict(stamp_ns=-2_000_000_000), GateDecision.REASON_STALE_VERDICT),
    (dict(scored_hold=0.1), GateDecision.REASON_HOLD_NOT_COVERED),
])
def test_a_verdict_that_does_not_bind_releases_nothing(gate_io, forgery, reason):
    p = gate_io.propose()
    if 'stamp_ns' in forgery:
        forgery['stamp_ns'] += gate_io.probe.now_ns()
    gate_io.verdict(p, **forgery)
    d = decision_for(gate_io, p)
    assert d.action == GateDecision.ACTION_BLOCK and reason in d.reasons
    assert not d.command_published
    gate_io.probe.spin_for(0.3)
    assert not moving(gate_io.commands)


def test_a_verdict_for_another_digest_is_recorded_and_the_real_one_decides(gate_io):
    p = gate_io.propose()
    gate_io.verdict(p, proposal_digest='0' * 64)
    gate_io.verdict(p)
    assert gate_io.probe.spin_until(lambda: len(gate_io.decisions_for(p)) == 2, 5.0)
    ignored, decided = sorted(gate_io.decisions_for(p), key=lambda d: d.subject, reverse=True)
    assert (ignored.subject, list(ignored.reasons)) == (
        GateDecision.SUBJECT_VERDICT, [GateDecision.REASON_DIGEST_MISMATCH])
    assert decided.subject == GateDecision.SUBJECT_PROPOSAL
    assert decided.action == GateDecision.ACTION_ALLOW


def test_a_replayed_verdict_releases_nothing_more(gate_io):
    p = gate_io.propose()
    verdict = gate_io.verdict(p)
    decision_for(gate_io, p)
    gate_io.signals.publish(verdict)                 # the same verdict again
    assert gate_io.probe.spin_until(lambda: len(gate_io.decisions_for(p)) == 2, 5.0)
    again = [d for d in gate_io.decisions_for(p) if d.subject == GateDecision.SUBJECT_VERDICT]
    assert [list(d.reasons) for d in again] == [[GateDecision.REASON_REPLAYED_VERDICT]]
    assert not again[0].command_published


def test_a_verdict_for_a_proposal_never_seen_is_recorded(gate_io):
    ghost = gate_io.make(seq=10**6)
    gate_io.verdict(ghost)
    assert gate_io.probe.spin_until(lambda: gate_io.decisions_for(ghost), 5.0)
    d, = gate_io.decisions_for(ghost)
    assert d.subject == GateDecision.SUBJECT_VERDICT
    assert GateDecision.REASON_UNKNOWN_PROPOSAL in d.reasons and not d.command_published


def test_without_fresh_odometry_nothing_is_approved(gate_io):
    gate_io.odometry.pause()
    gate_io.probe.spin_for(0.3)
    p = gate_io.propose()
    gate_io.verdict(p)
    d = decision_for(gate_io, p)
    assert list(d.reasons) == [GateDecision.REASON_STALE_ODOMETRY] and not d.command_published


def test_a_trajectory_that_does_not_start_at_the_robot_is_refused(gate_io):
    p = gate_io.propose(y=2.0)
    gate_io.verdict(p)
    d = decision_for(gate_io, p)
    assert list(d.reasons) == [GateDecision.REASON_START_POSE_MISMATCH]


def bad_bytes(kind: str, io: GateIO) -> tuple[str, bytes]:
    if kind == 'empty':
        p = dataclasses.replace(io.make(), t_ns=np.zeros(0, np.int64), states=np.empty((0, 5)))
        return p.proposal_id, encode_proposal(p)
    p = io.make(points=201 if kind == 'too_many' else 20,
                frame_id='odom' if kind == 'frame' else 'map',
                proposer_id='mallory' if kind == 'proposer' else 'proposer')
    if kind == 'nan':
        p.states[4, 0] = math.nan
    elif kind == 'inf':
        p = dataclasses.replace(p, command=(math.inf, 0.0))
    elif kind == 'time':
        p.t_ns[5] = p.t_ns[3]
    elif kind == 'future':
        p = dataclasses.replace(p, stamp_ns=p.stamp_ns + 3600 * 10**9)
    elif kind == 'huge':
        p = dataclasses.replace(straight(1.5, 1.0, 0.0, 0.5, points=100_000), proposal_id='big/1')
    elif kind == 'truncated':
        return p.proposal_id, encode_proposal(p)[:500]
    return p.proposal_id, encode_proposal(p)


@pytest.mark.parametrize('kind, reason', [
    ('nan', GateDecision.REASON_NON_FINITE), ('inf', GateDecision.REASON_NON_FINITE),
    ('empty', GateDecision.REASON_EMPTY_TRAJECTORY),
    ('time', GateDecision.REASON_NON_MONOTONIC_TIME),
    ('too_many', GateDecision.REASON_OVERSIZE),
    ('huge', GateDecision.REASON_OVERSIZE),
    ('truncated', GateDecision.REASON_MALFORMED),
    ('frame', GateDecision.REASON_WRONG_FRAME),
    ('future', GateDecision.REASON_FUTURE_STAMP),
    ('proposer', GateDecision.REASON_UNKNOWN_PROPOSER)])
def test_malformed_proposals_are_blocked_with_a_reason(gate_io, kind, reason):
    proposal_id, raw = bad_bytes(kind, gate_io)
    gate_io.proposals.publish(raw)
    assert gate_io.probe.spin_until(
        lambda: any(d.proposal_id == proposal_id for d in gate_io.decisions), 5.0)
    d = next(d for d in gate_io.decisions if d.proposal_id == proposal_id)
    assert d.action == GateDecision.ACTION_BLOCK and reason in d.reasons
    assert not d.command_published and not moving(gate_io.commands)


def test_an_oversize_verdict_is_recorded_and_ignored(gate_io):
    p = gate_io.propose()
    forged = signals_to_msg(dataclasses.replace(gate_io.oracle.evaluate(p),
                                                stamp_ns=gate_io.probe.now_ns()), 'map')
    gate_io.signals.publish(serialize_message(forged) + bytes(40_000))   # then 40 KB of junk
    gate_io.verdict(p)
    assert decision_for(gate_io, p).action == GateDecision.ACTION_ALLOW
    assert gate_io.probe.spin_until(lambda: any(
        GateDecision.REASON_OVERSIZE in d.reasons and d.subject == GateDecision.SUBJECT_VERDICT
        for d in gate_io.decisions), 5.0)


@pytest.mark.parametrize('damage, reason', [
    ('oracle_version', GateDecision.REASON_OVERSIZE),
    ('truncated', GateDecision.REASON_MALFORMED),
    ('status', GateDecision.REASON_MALFORMED)])
def test_an_unreadable_verdict_is_recorded_under_its_proposal_and_decides_nothing(
        gate_io, damage, reason):
    """Read from its bytes with every bound checked first: refused before anything is built."""
    p = gate_io.propose()
    forged = {'oracle_version': dict(oracle_version='v' * 65), 'status': dict(evidence_status=99),
              'truncated': {}}[damage]
    raw = serialize_message(gate_io.verdict_msg(p, **forged))    # signed, as an Oracle would
    if damage == 'truncated':
        raw = raw[:-70]
    gate_io.signals.publish(raw)
    assert gate_io.probe.spin_until(lambda: any(
        d.subject == GateDecision.SUBJECT_VERDICT for d in gate_io.decisions_for(p)), 5.0)
    ignored = next(d for d in gate_io.decisions_for(p)
                   if d.subject == GateDecision.SUBJECT_VERDICT)
    assert list(ignored.reasons) == [reason] and not ignored.command_published
    gate_io.verdict(p)                                 # the honest one still decides it
    assert decision_for(gate_io, p).action == GateDecision.ACTION_ALLOW


def test_unreadable_odometry_is_ignored_and_ages_out(gate_io):
    """Odometry is read from its bytes too: a frame over its bound or truncated bytes anchor
    nothing; with nothing else the last good odometry goes stale and nothing is approved."""
    gate_io.odometry.pause()
    bad = probe_odometry(gate_io, frame_id='m' * 300)
    bad_raw = serialize_message(bad)
    pub = gate_io.odometry.pub
    for _ in range(20):
        pub.publish(bad_raw)
        pub.publish(serialize_message(probe_odometry(gate_io))[:60])
        gate_io.probe.spin_for(0.02)
    p = gate_io.propose()
    gate_io.verdict(p)
    d = decision_for(gate_io, p)
    assert list(d.reasons) == [GateDecision.REASON_STALE_ODOMETRY] and not d.command_published
    assert gate_io.graph.processes['gate'].poll() is None


def probe_odometry(io: GateIO, frame_id: str = 'map') -> Odometry:
    msg = Odometry()
    msg.header.stamp = to_time(io.probe.now_ns())
    msg.header.frame_id = frame_id
    msg.pose.pose.position.x, msg.pose.pose.position.y = io.START[0], io.START[1]
    msg.pose.pose.orientation.w = 1.0
    return msg


def test_decisions_are_numbered_without_gaps(gate_io):
    for _ in range(5):
        gate_io.verdict(gate_io.propose())
    assert gate_io.probe.spin_until(lambda: len(gate_io.decisions) >= 5, 5.0)
    seqs = [d.seq for d in gate_io.decisions]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert len({d.epoch for d in gate_io.decisions}) == 1


def test_stamped_output_carries_the_send_time(probe, start_graph, spec):
    io = GateIO.start(probe, start_graph, spec, {'stamped': True}, command_type=TwistStamped)
    p = io.propose()
    io.verdict(p)
    decision_for(io, p)
    assert probe.spin_until(lambda: any(c.twist.linear.x == 0.5 for c in io.commands), 2.0)
    going = next(c for c in io.commands if c.twist.linear.x == 0.5)
    assert abs(from_time(going.header.stamp) - probe.now_ns()) < 500_000_000


def test_the_gate_says_stop_on_its_way_out(gate_io):
    p = gate_io.propose()
    gate_io.verdict(p)
    assert gate_io.probe.spin_until(lambda: moving(gate_io.commands), 2.0)
    gate_io.graph.processes['gate'].send_signal(signal.SIGINT)
    assert gate_io.graph.processes['gate'].wait(timeout=10) == 0
    gate_io.probe.spin_for(0.2)
    assert gate_io.commands[-1].linear.x == 0.0 and gate_io.commands[-1].angular.z == 0.0


def test_the_proposal_layout_on_the_wire_is_the_message(gate_io):
    """The bytes the Gate reads are those any ROS node sends for alignment_flywheel/Proposal."""
    p = gate_io.make()
    gate_io.proposals.publish(deserialize_message(gate_io.raw[p.proposal_id], ProposalMsg))
    gate_io.verdict(p)
    assert decision_for(gate_io, p).action == GateDecision.ACTION_ALLOW



def test_diagnostics_report_what_was_decided_and_what_never_arrived(gate_io):
    """Proposals lost before the Gate (gaps in (epoch, seq)) are counted, not silent."""
    from diagnostic_msgs.msg import DiagnosticArray
    reports = gate_io.probe.collect(DiagnosticArray, '/diagnostics', 10)
    for seq in (1, 2, 10):
        p = gate_io.make(seq=seq)
        gate_io.proposals.publish(gate_io.raw[p.proposal_id])
        gate_io.verdict(p)
        decision_for(gate_io, p)

    def counted() -> bool:
        return any(v.get('lost') == '7' and int(v['ALLOW']) >= 3
                   for v in map(values, health(reports, 'gate')))
    assert gate_io.probe.spin_until(counted, 5.0)


@pytest.mark.parametrize('forge', ['unsigned', 'tampered'])
def test_a_forged_verdict_over_dds_is_recorded_and_the_genuine_one_decides(gate_io, forge):
    p = gate_io.propose()
    if forge == 'unsigned':
        gate_io.verdict(p, sign=False, collision_risk=0.0, safety_score=1.0)
    else:
        msg = gate_io.verdict_msg(p)
        msg.seq += 1000                      # re-numbered after signing
        gate_io.signals.publish(msg)
    gate_io.verdict(p)
    d = decision_for(gate_io, p)
    assert d.action == GateDecision.ACTION_ALLOW
    ignored = [x for x in gate_io.decisions_for(p) if x.subject == GateDecision.SUBJECT_VERDICT]
    assert [list(x.reasons) for x in ignored] == [[GateDecision.REASON_BAD_SIGNATURE]]


def test_an_unsigned_proposal_under_a_signing_proposer_id_is_refused(gate_io):
    p = dataclasses.replace(gate_io.make(), signature=b'')
    gate_io.proposals.publish(encode_proposal(p))
    d = decision_for(gate_io, p)
    assert GateDecision.REASON_BAD_SIGNATURE in d.reasons and not d.command_published
