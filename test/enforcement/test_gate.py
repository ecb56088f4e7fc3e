"""The Gate's binding rules, one test per way a verdict can fail to bind or a proposal can fail to
be what is executed, its clocks, exactly one decision per proposal, and a property: no command
without an approving verdict for that exact digest."""
import dataclasses
import math

import pytest
from hypothesis import given, settings, strategies as st

from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.decision import Action, Finding, Reason, Subject
from flywheel.enforcement.gate import STOP, Gate, Now
from flywheel.kinematics import RobotState
from flywheel.odometry import Odometry
from flywheel.oracle.oracle import Oracle
from flywheel.proposal import ProposalLimits
from test.helpers import straight

MS = 1_000_000
EPOCH = 1_700_000_000 * 10**9            # proposers' start time on the wall clock
CONFIG = GateConfig(accepted_oracle_versions=('1.0.0',), command_timeout=0.3, tick_period=0.02,
                    verdict_timeout=0.25, signal_timeout=0.2, proposal_timeout=0.5, max_pending=4)


def at(ms: float) -> Now:
    """The same instant on every clock (ROS time starts at 0 here; wall time after EPOCH)."""
    ns = int(ms * MS)
    return Now(ros_ns=ns, steady_ns=ns, wall_ns=EPOCH + 10**9 + ns)


@pytest.fixture
def gate(policy):
    gate = Gate(policy, CONFIG)
    robot_at(gate, 1.5, 1.0, 0.0)
    return gate


def robot_at(gate, x, y, yaw, v=0.0, w=0.0, stamp_ms=0.0, frame='map'):
    gate.on_odometry(Odometry(RobotState(x, y, yaw, v, w), int(stamp_ms * MS), frame))


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits())


def prop(x=1.5, y=1.0, yaw=0.0, v=0.5, *, seq=1, stamp_ms=0.0, epoch=EPOCH, **kwargs):
    return dataclasses.replace(straight(x, y, yaw, v, seq=seq, stamp_ns=int(stamp_ms * MS),
                                        **kwargs), epoch=epoch)


SEQ = iter(range(1, 10**9))


def verdict(oracle, proposal, stamp_ms, **changes):
    """The real Oracle's verdict, stamped and numbered as the Oracle node does."""
    changes.setdefault('seq', next(SEQ))
    return dataclasses.replace(oracle.evaluate(proposal), stamp_ns=int(stamp_ms * MS),
                               epoch=EPOCH, **changes)


def decide(gate, oracle, p, t_ms=0.0, **changes):
    assert gate.on_proposal(p, at(t_ms)) == []
    d, = gate.on_signals(verdict(oracle, p, t_ms, **changes), at(t_ms))
    return d


def test_safe_proposal_is_allowed_and_its_command_approved(gate, oracle):
    p = prop()
    assert gate.on_proposal(p, at(1)) == []
    d, = gate.on_signals(verdict(oracle, p, 5), at(6))
    assert d.action == Action.ALLOW and d.command == (0.5, 0.0) and d.subject == Subject.PROPOSAL
    assert d.proposal_digest == p.digest and d.latency_ns == 6 * MS
    assert d.signals.proposal_digest == p.digest          # the decision carries its verdict
    assert gate.command_at(at(6).steady_ns) == (0.5, 0.0)


def test_degrade_approves_the_command_scaled_on_the_same_arc(gate, oracle):
    d = decide(gate, oracle, prop(v=0.5, w=0.4), collision_risk=0.5, safety_score=0.5)
    assert d.action == Action.DEGRADE and d.command == pytest.approx((0.25, 0.2))


def test_collision_is_blocked_and_the_approval_withdrawn(gate, oracle):
    decide(gate, oracle, prop(seq=1))
    robot_at(gate, 3.0, 4.0, 0.0)
    d = decide(gate, oracle, prop(3.0, 4.0, 0.0, 0.9, seq=2), 1)
    assert d.action == Action.BLOCK and d.command is None
    assert gate.command_at(at(1).steady_ns) is None


def test_a_verdict_for_another_digest_is_ignored_and_the_real_one_still_decides(gate, oracle):
    p = prop()
    gate.on_proposal(p, at(0))
    forged = verdict(oracle, prop(v=0.4), 0, proposal_id=p.proposal_id)
    ignored, = gate.on_signals(forged, at(0))
    assert (ignored.subject, ignored.reasons, ignored.command) == (
        Subject.VERDICT, (Reason.DIGEST_MISMATCH,), None)
    d, = gate.on_signals(verdict(oracle, p, 1), at(1))
    assert d.subject == Subject.PROPOSAL and d.action == Action.ALLOW


def test_unknown_oracle_version_is_blocked_when_its_proposal_times_out(gate, oracle):
    """Parked, not decided at once: governance's status naming a new release may still come."""
    p = prop()
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, p, 0, oracle_version='0.9.0'), at(1)) == []
    assert gate.tick(at(200)) == [] and gate.command_at(at(200).steady_ns) is None
    d, = gate.tick(at(260))
    assert d.subject == Subject.PROPOSAL and d.action == Action.BLOCK and d.command is None
    assert Reason.UNKNOWN_ORACLE_VERSION in d.reasons


def test_stale_verdict_is_blocked(gate, oracle):
    p = prop(stamp_ms=300)
    gate.on_proposal(p, at(300))
    d, = gate.on_signals(verdict(oracle, p, 99), at(300))
    assert d.reasons == (Reason.STALE_VERDICT,) and d.command is None


def test_a_verdict_stamped_within_the_skew_is_not_stale(gate, oracle):
    """A verdict 0.5 ms ahead (clocks of two processes) was STALE while a proposal 1 h ahead
    was allowed: both sides are bounded by the same skew now."""
    p = prop()
    gate.on_proposal(p, at(0))
    d, = gate.on_signals(verdict(oracle, p, 0.5), at(0))
    assert d.action == Action.ALLOW


def test_a_verdict_from_beyond_the_skew_is_refused(gate, oracle):
    p = prop()
    gate.on_proposal(p, at(0))
    d, = gate.on_signals(verdict(oracle, p, 51), at(0))
    assert Reason.FUTURE_STAMP in d.reasons and d.command is None


@pytest.mark.parametrize('ahead_ms', [51, 10_000, 3_600_000])
def test_a_proposal_from_the_future_is_refused(gate, ahead_ms):
    d, = gate.on_proposal(prop(stamp_ms=ahead_ms), at(0))
    assert Reason.FUTURE_STAMP in d.reasons and d.command is None


def test_a_proposer_epoch_from_the_future_is_refused(gate):
    d, = gate.on_proposal(prop(epoch=at(0).wall_ns + 10**9), at(0))
    assert Reason.FUTURE_STAMP in d.reasons


def test_stale_proposal_is_blocked_on_arrival(gate):
    d, = gate.on_proposal(prop(stamp_ms=0), at(501))
    assert d.reasons == (Reason.STALE_PROPOSAL,) and d.command is None


def test_a_verdict_that_covers_a_shorter_hold_is_refused(gate, oracle):
    d = decide(gate, oracle, prop(), scored_hold=0.2)
    assert d.reasons == (Reason.HOLD_NOT_COVERED,) and d.command is None


@pytest.mark.parametrize('field', ['scored_hold', 'anchor_tolerance', 'anchor_yaw_tolerance'])
def test_a_verdict_with_non_finite_coverage_is_refused(gate, oracle, field):
    d = decide(gate, oracle, prop(), **{field: math.nan})
    assert Reason.HOLD_NOT_COVERED in d.reasons and d.command is None


def test_a_trajectory_that_does_not_start_at_the_robot_is_refused(gate, oracle):
    robot_at(gate, 1.5, 1.3, 0.0)             # 0.3 m from the trajectory's first pose
    d = decide(gate, oracle, prop())
    assert d.reasons == (Reason.START_POSE_MISMATCH,) and d.command is None


def test_a_trajectory_turned_away_from_the_robot_heading_is_refused(gate, oracle):
    robot_at(gate, 1.5, 1.0, 0.5)
    d = decide(gate, oracle, prop())
    assert d.reasons == (Reason.START_POSE_MISMATCH,)


def test_the_robot_drift_since_its_odometry_counts_against_the_anchor(gate, oracle):
    """Odometry 90 ms old of a robot at 1 m/s: it is ~9 cm further than measured."""
    robot_at(gate, 1.5, 1.0, 0.0, v=1.0, stamp_ms=10)
    d = decide(gate, oracle, prop(stamp_ms=100), 100)
    assert d.reasons == (Reason.START_POSE_MISMATCH,)


@pytest.mark.parametrize('odometry, why', [
    (None, 'no odometry'), (dict(stamp_ms=-200), 'old'), (dict(frame='odom'), 'frame'),
    (dict(x=math.nan), 'non-finite')])
def test_without_fresh_odometry_in_the_world_frame_nothing_is_approved(policy, oracle, odometry,
                                                                          why):
    gate = Gate(policy, CONFIG)
    if odometry is not None:
        robot_at(gate, **{**dict(x=1.5, y=1.0, yaw=0.0), **odometry})
    d = decide(gate, oracle, prop())
    assert d.reasons == (Reason.STALE_ODOMETRY,) and why in d.findings[0].detail
    assert d.command is None


def test_a_verdict_for_a_proposal_that_never_comes_is_recorded_after_the_timeout(gate, oracle):
    assert gate.on_signals(verdict(oracle, prop(), 0), at(0)) == []
    assert gate.tick(at(249)) == []
    d, = gate.tick(at(250))
    assert (d.subject, d.reasons, d.command) == (Subject.VERDICT, (Reason.UNKNOWN_PROPOSAL,),
                                                 None)


def test_a_verdict_that_overtakes_its_proposal_still_decides_it(gate, oracle):
    p = prop()
    assert gate.on_signals(verdict(oracle, p, 1), at(1)) == []
    d, = gate.on_proposal(p, at(2))
    assert d.action == Action.ALLOW and d.command == (0.5, 0.0)
    assert gate.tick(at(500)) == []          # decided once, nothing left to time out


def test_an_early_verdict_for_a_malformed_proposal_yields_no_second_decision(gate, oracle):
    p = prop(proposer_id='mallory')
    assert gate.on_signals(verdict(oracle, p, 0), at(0)) == []
    decisions = gate.on_proposal(p, at(1)) + gate.tick(at(600))
    assert [(d.subject, d.reasons) for d in decisions] == [
        (Subject.PROPOSAL, (Reason.UNKNOWN_PROPOSER,))]


def test_an_early_verdict_for_a_replayed_proposal_yields_no_second_decision(gate, oracle):
    p = prop(seq=5)
    decide(gate, oracle, p)
    replay = prop(seq=5, stamp_ms=10)
    assert gate.on_signals(verdict(oracle, replay, 10), at(10)) == []
    decisions = gate.on_proposal(replay, at(11)) + gate.tick(at(600))
    assert [d.reasons for d in decisions] == [(Reason.REPLAYED_SEQ,)]


def test_a_flood_of_orphan_verdicts_is_bounded(gate, oracle):
    decided = []
    for i in range(1, 7):
        decided += gate.on_signals(verdict(oracle, prop(seq=i), 0), at(0))
    assert [d.proposal_id for d in decided] == ['proposer/1', 'proposer/2']   # max_pending 4
    assert all(d.subject == Subject.VERDICT for d in decided)


def test_a_replayed_verdict_is_recorded_and_releases_nothing(gate, oracle):
    p = prop()
    gate.on_proposal(p, at(0))
    v = verdict(oracle, p, 0)
    assert gate.on_signals(v, at(0))[0].action == Action.ALLOW
    again, = gate.on_signals(v, at(1))
    assert (again.subject, again.reasons, again.command) == (
        Subject.VERDICT, (Reason.REPLAYED_VERDICT,), None)


def test_an_old_verdict_cannot_decide_a_new_proposal(gate, oracle):
    """A verdict's (epoch, seq) only moves forward: one recorded earlier and sent again for a new
    proposal with the same digest is refused before it can bind."""
    p = prop()
    old = verdict(oracle, p, 0, seq=10)
    gate.on_signals(verdict(oracle, prop(seq=9), 0, seq=11), at(0))
    gate.on_proposal(p, at(0))
    ignored, = gate.on_signals(old, at(0))
    assert ignored.reasons == (Reason.REPLAYED_VERDICT,)


def test_a_replayed_proposal_is_blocked(gate, oracle):
    decide(gate, oracle, prop(seq=5, stamp_ms=10), 10)
    d, = gate.on_proposal(prop(seq=5, stamp_ms=10), at(20))
    assert Reason.REPLAYED_SEQ in d.reasons and d.command is None


def test_an_older_seq_with_a_fresh_stamp_is_a_replay_even_after_a_block(gate, oracle):
    robot_at(gate, 3.0, 4.0, 0.0)
    decide(gate, oracle, prop(3.0, 4.0, 0.0, 0.9, seq=5))            # BLOCKed: collision
    d, = gate.on_proposal(prop(3.0, 4.0, 0.0, 0.9, seq=4, stamp_ms=50), at(50))
    assert Reason.REPLAYED_SEQ in d.reasons


def test_a_resent_id_with_a_new_seq_is_a_replay(gate, oracle):
    decide(gate, oracle, prop(seq=5))
    again = dataclasses.replace(prop(seq=6, stamp_ms=10), proposal_id='proposer/5')
    d, = gate.on_proposal(again, at(10))
    assert Reason.REPLAYED_SEQ in d.reasons


def test_a_huge_seq_cannot_poison_the_gate(gate, oracle):
    d, = gate.on_proposal(prop(seq=2**64 - 1), at(0))
    assert d.reasons == (Reason.SEQ_JUMP,)
    assert decide(gate, oracle, prop(seq=1, stamp_ms=1), 1).action == Action.ALLOW


def test_a_restarted_proposer_starts_a_new_epoch_from_seq_1(gate, oracle):
    decide(gate, oracle, prop(seq=50_000))
    d = decide(gate, oracle, prop(seq=1, stamp_ms=10, epoch=EPOCH + 10**9), 10)
    assert d.action == Action.ALLOW


def test_an_older_epoch_is_a_replay(gate, oracle):
    decide(gate, oracle, prop(seq=1, epoch=EPOCH + 10**9))
    d, = gate.on_proposal(prop(seq=99, stamp_ms=10, epoch=EPOCH), at(10))
    assert d.reasons == (Reason.REPLAYED_SEQ,)


def test_an_older_proposal_approved_after_a_newer_one_is_superseded(gate, oracle):
    old, new = prop(seq=1), prop(v=0.4, seq=2)
    gate.on_proposal(old, at(0))
    gate.on_proposal(new, at(0))
    assert gate.on_signals(verdict(oracle, new, 0), at(0))[0].action == Action.ALLOW
    d, = gate.on_signals(verdict(oracle, old, 0), at(0))
    assert d.reasons == (Reason.STALE_PROPOSAL,) and d.command is None


def test_proposals_lost_before_the_gate_are_counted(gate):
    gate.on_proposal(prop(seq=1), at(0))
    gate.on_proposal(prop(seq=5), at(0))
    assert gate.counts['lost'] == 3


@pytest.mark.parametrize('mutate, reason', [
    (lambda p: p.states.__setitem__((2, 0), math.nan), Reason.NON_FINITE),
    (lambda p: p.t_ns.__setitem__(3, 0), Reason.NON_MONOTONIC_TIME),
])
def test_malformed_proposals_are_blocked_on_arrival(gate, mutate, reason):
    p = prop()
    mutate(p)
    d, = gate.on_proposal(p, at(0))
    assert reason in d.reasons and d.action == Action.BLOCK and d.command is None


@pytest.mark.parametrize('kwargs, reason', [
    (dict(points=201), Reason.TOO_MANY_POINTS), (dict(frame_id='odom'), Reason.WRONG_FRAME),
    (dict(proposer_id='mallory'), Reason.UNKNOWN_PROPOSER),
    (dict(points=3), Reason.HORIZON_TOO_SHORT)])
def test_proposals_outside_the_limits_are_blocked(gate, kwargs, reason):
    d, = gate.on_proposal(prop(**kwargs), at(0))
    assert d.reasons[0] == reason and d.command is None


def test_refused_input_is_decided_under_its_claimed_id_and_withdraws_the_approval(gate, oracle):
    decide(gate, oracle, prop())
    d = gate.on_refused_input('proposer/99', 'proposer', Reason.OVERSIZE, '100000 points',
                              at(1))
    assert (d.subject, d.proposal_id, d.reasons, d.command) == (
        Subject.PROPOSAL, 'proposer/99', (Reason.OVERSIZE,), None)
    assert gate.command_at(at(1).steady_ns) is None


def test_a_proposal_without_verdict_times_out_once(gate):
    gate.on_proposal(prop(), at(0))
    assert gate.tick(at(249)) == []
    assert [d.reasons for d in gate.tick(at(250))] == [(Reason.NO_VERDICT,)]
    assert gate.tick(at(300)) == []


def test_a_full_queue_decides_the_oldest_as_overload(gate):
    decided = []
    for seq in range(1, 6):
        decided += gate.on_proposal(prop(seq=seq, stamp_ms=seq * 1e-6), at(seq * 1e-6))
    assert [(d.proposal_id, d.reasons) for d in decided] == [('proposer/1', (Reason.OVERLOAD,))]
    assert gate.counts['overload'] == 1


def test_an_approval_lasts_command_timeout_less_the_delivery_margin_on_the_steady_clock(gate,
                                                                                     oracle):
    assert (CONFIG.command_timeout, CONFIG.delivery_margin) == (0.3, 0.08)
    decide(gate, oracle, prop())
    assert gate.command_at(at(219.999).steady_ns) == (0.5, 0.0)
    assert gate.command_at(at(220).steady_ns) is None


def test_a_stalled_ros_clock_cannot_extend_an_approval(gate, oracle):
    """Under sim time /clock may stop; the approval still ends on the steady clock."""
    decide(gate, oracle, prop())
    frozen = Now(ros_ns=0, steady_ns=10**9, wall_ns=at(0).wall_ns)
    gate.tick(frozen)
    assert gate.command_at(frozen.steady_ns) is None


def test_the_tick_must_be_shorter_than_the_time_an_approval_is_honoured():
    with pytest.raises(ValueError, match='tick_period'):
        GateConfig(command_timeout=0.1, tick_period=0.1, delivery_margin=0.0)
    with pytest.raises(ValueError, match='tick_period'):
        GateConfig(command_timeout=0.1, tick_period=0.05, delivery_margin=0.06)
    with pytest.raises(ValueError, match='delivery_margin'):
        GateConfig(command_timeout=0.1, delivery_margin=0.1)


def test_internal_failure_falls_back_to_stop(gate, oracle):
    decide(gate, oracle, prop())
    d = gate.fallback('p/x', 'proposer', Finding(Action.FALLBACK, Reason.INTERNAL_ERROR, 'x'),
                      at(1))
    assert d.command == STOP and gate.command_at(at(1).steady_ns) is None


# -- property -------------------------------------------------------------------------------------

events = st.lists(st.tuples(
    st.sampled_from(['propose', 'honest', 'forge_digest', 'forge_version', 'stale', 'replay',
                     'tick', 'move']),
    st.integers(0, 7),                       # which proposal
    st.sampled_from([0.3, 0.5, 0.9, 1.4]),   # speed (1.4 is over the limit)
    st.integers(1, 120)),                    # ms to advance
    max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_no_command_without_an_approving_verdict_for_that_exact_digest(policy, oracle, script):
    gate = Gate(policy, CONFIG)
    t, proposals, last_verdict, approved = 0.0, {}, {}, []
    honest = set()   # digests for which an honest (exact, accepted, fresh) verdict was sent
    seqs = iter(range(1, 10**6))
    for kind, idx, speed, step in script:
        t += step
        robot_at(gate, 3.0, 4.0 - idx * 0.4, 0.0, stamp_ms=t)
        decisions = []
        if kind == 'propose':
            p = prop(3.0, 4.0 - idx * 0.4, 0.0, speed, seq=len(proposals) + 1, stamp_ms=t)
            proposals[idx] = p
            decisions = gate.on_proposal(p, at(t))
        elif kind == 'tick':
            decisions = gate.tick(at(t))
        elif kind == 'move':
            robot_at(gate, 3.0 + speed, 4.0, 1.0, stamp_ms=t)
        elif kind == 'replay':
            if idx in last_verdict:
                decisions = gate.on_signals(last_verdict[idx], at(t))
        elif idx in proposals:
            p = proposals[idx]
            v = verdict(oracle, p, t, seq=next(seqs))
            flattering = dict(safety_score=1.0, collision_risk=0.0, constraint_risk=0.0)
            if kind == 'forge_digest':
                v = dataclasses.replace(v, proposal_digest='0' * 64, **flattering)
            elif kind == 'forge_version':
                v = dataclasses.replace(v, oracle_version='6.6.6', **flattering)
            elif kind == 'stale':
                v = dataclasses.replace(v, stamp_ns=int((t - 400) * MS), **flattering)
            else:
                honest.add(p.digest)
            last_verdict[idx] = v
            decisions = gate.on_signals(v, at(t))
        approved += [d for d in decisions if d.command is not None and d.command != STOP]
        proposal_decisions = [d for d in decisions if d.subject == Subject.PROPOSAL]
        assert len({d.proposal_id for d in proposal_decisions}) == len(proposal_decisions)
    for d in approved:
        assert d.action.approves
        assert d.proposal_digest in honest, 'command released without an honest verdict'
