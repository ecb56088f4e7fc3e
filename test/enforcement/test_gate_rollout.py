"""A candidate release on trial can only make the robot more careful: in shadow its verdicts are
recorded, never enforced; in canary a proposal needs both verdicts and the most restrictive wins."""
from __future__ import annotations

import dataclasses
import itertools

import pytest

from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.decision import Action, Reason, Subject
from flywheel.enforcement.gate import Gate, Stage
from flywheel.oracle.oracle import Oracle
from flywheel.oracle_status import OracleStatus
from flywheel.proposal import ProposalLimits
from test.enforcement.test_gate import EPOCH, at, prop, robot_at

SEQ = itertools.count(1)
STATUS_SEQ = itertools.count(1)
BLOCKING = dict(collision_risk=1.0, safety_score=0.0)


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits())


def gate_in(policy, stage: Stage) -> Gate:
    gate = Gate(policy, GateConfig(follow_governance=True, max_pending=8))
    robot_at(gate, 1.5, 1.0, 0.0)
    status = OracleStatus(EPOCH, next(STATUS_SEQ), at(0).wall_ns, 'active', '1.0.0', 1, '', 0, 2,
                          '1.0.0', ('1.0.0',), 1, b'', '', candidate_version='1.1.0',
                          candidate_number=2, stage=int(stage))
    assert gate.on_status(status, at(0)) is None
    return gate


def verdict(oracle, p, version='1.0.0', **changes):
    return dataclasses.replace(oracle.evaluate(p), oracle_version=version, epoch=EPOCH,
                               seq=next(SEQ), **changes)


def test_in_shadow_only_the_active_release_decides(policy, oracle):
    gate = gate_in(policy, Stage.SHADOW)
    p = prop()
    gate.on_proposal(p, at(0))
    d, = gate.on_signals(verdict(oracle, p), at(1))
    assert (d.subject, d.action, d.command) == (Subject.PROPOSAL, Action.ALLOW, (0.5, 0.0))
    shadow, = gate.on_signals(verdict(oracle, p, '1.1.0', **BLOCKING), at(2))
    assert (shadow.subject, shadow.action, shadow.command) == (Subject.SHADOW, Action.BLOCK, None)
    assert shadow.verdicts[0][0].oracle_version == '1.1.0'
    assert gate.command_at(at(2).steady_ns) == (0.5, 0.0)          # not withdrawn by the shadow


def test_a_shadow_candidate_that_would_allow_a_collision_releases_nothing(policy, oracle):
    gate = gate_in(policy, Stage.SHADOW)
    robot_at(gate, 3.0, 4.0, 0.0)
    p = prop(3.0, 4.0, 0.0, 0.9)
    gate.on_proposal(p, at(0))
    flattering = dict(collision_risk=0.0, constraint_risk=0.0, safety_score=1.0,
                      min_clearance=float('inf'), time_to_collision=float('inf'), evidence=())
    shadow, = gate.on_signals(verdict(oracle, p, '1.1.0', **flattering), at(1))   # first
    assert shadow.subject == Subject.SHADOW and shadow.action == Action.ALLOW
    assert shadow.command is None and gate.command_at(at(1).steady_ns) is None
    d, = gate.on_signals(verdict(oracle, p), at(2))
    assert d.action == Action.BLOCK and Reason.COLLISION_RISK in d.reasons


def test_in_canary_a_proposal_waits_for_both_and_the_most_restrictive_wins(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, p), at(1)) == []           # waits for the candidate
    d, = gate.on_signals(verdict(oracle, p, '1.1.0', **BLOCKING), at(2))
    assert d.subject == Subject.PROPOSAL and d.action == Action.BLOCK and d.command is None
    assert [(v.oracle_version, a) for v, a in d.verdicts] == [('1.0.0', Action.ALLOW),
                                                              ('1.1.0', Action.BLOCK)]


def test_in_canary_both_allowing_approves(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    gate.on_proposal(p, at(0))
    gate.on_signals(verdict(oracle, p, '1.1.0'), at(1))
    d, = gate.on_signals(verdict(oracle, p), at(2))
    assert d.action == Action.ALLOW and d.command == (0.5, 0.0)
    assert d.oracle_version == '1.0.0+1.1.0'


def test_in_canary_a_silent_candidate_means_no_verdict(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    gate.on_proposal(p, at(0))
    gate.on_signals(verdict(oracle, p), at(1))
    d, = gate.tick(at(250))
    assert d.reasons == (Reason.NO_VERDICT,) and 'active' in d.findings[0].detail
    assert d.command is None


def test_without_a_rollout_a_candidate_version_counts_for_nothing(policy, oracle):
    gate = gate_in(policy, Stage.NONE)
    p = prop()
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, p, '1.1.0'), at(1)) == []
    d, = gate.tick(at(260))
    assert d.action == Action.BLOCK and Reason.UNKNOWN_ORACLE_VERSION in d.reasons


def test_a_shadow_verdict_after_its_proposal_was_approved_is_judged_alone(policy, oracle):
    """The active release's approval of the same proposal must not read as 'superseded'."""
    gate = gate_in(policy, Stage.SHADOW)
    p = prop()
    gate.on_proposal(p, at(0))
    gate.on_signals(verdict(oracle, p), at(1))
    shadow, = gate.on_signals(verdict(oracle, p, '1.1.0'), at(2))
    assert (shadow.action, shadow.reasons) == (Action.ALLOW, (Reason.WITHIN_POLICY,))


def test_in_shadow_verdicts_that_overtake_their_proposal_still_make_the_shadow_record(
        policy, oracle):
    gate = gate_in(policy, Stage.SHADOW)
    p = prop()
    assert gate.on_signals(verdict(oracle, p), at(0)) == []
    assert gate.on_signals(verdict(oracle, p, '1.1.0', **BLOCKING), at(1)) == []
    d, shadow = gate.on_proposal(p, at(2))
    assert (d.subject, d.action, d.command) == (Subject.PROPOSAL, Action.ALLOW, (0.5, 0.0))
    assert (shadow.subject, shadow.action) == (Subject.SHADOW, Action.BLOCK)
    assert shadow.verdicts[0][0].oracle_version == '1.1.0'
    assert gate.tick(at(500)) == []


def test_in_shadow_a_candidate_verdict_alone_ahead_of_its_proposal_is_recorded(policy, oracle):
    gate = gate_in(policy, Stage.SHADOW)
    p = prop()
    assert gate.on_signals(verdict(oracle, p, '1.1.0'), at(0)) == []
    shadow, = gate.on_proposal(p, at(1))
    assert shadow.subject == Subject.SHADOW
    d, = gate.on_signals(verdict(oracle, p), at(2))
    assert (d.subject, d.action) == (Subject.PROPOSAL, Action.ALLOW)


def test_in_canary_both_verdicts_ahead_of_their_proposal_decide_it(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    assert gate.on_signals(verdict(oracle, p), at(0)) == []
    assert gate.on_signals(verdict(oracle, p, '1.1.0'), at(1)) == []
    d, = gate.on_proposal(p, at(2))
    assert d.subject == Subject.PROPOSAL and d.action == Action.ALLOW
    assert [v.oracle_version for v, _ in d.verdicts] == ['1.0.0', '1.1.0']
    assert gate.tick(at(500)) == []


def test_verdicts_ahead_of_a_proposal_that_never_comes_are_each_recorded(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    gate.on_signals(verdict(oracle, p), at(0))
    gate.on_signals(verdict(oracle, p, '1.1.0'), at(1))
    assert gate.tick(at(249)) == []
    expired = gate.tick(at(251))
    assert [(d.subject, d.reasons, d.oracle_version) for d in expired] == [
        (Subject.VERDICT, (Reason.UNKNOWN_PROPOSAL,), '1.0.0'),
        (Subject.VERDICT, (Reason.UNKNOWN_PROPOSAL,), '1.1.0')]


def test_ahead_of_its_proposal_one_verdict_per_release_and_two_releases_are_kept(policy, oracle):
    gate = gate_in(policy, Stage.CANARY)
    p = prop()
    assert gate.on_signals(verdict(oracle, p), at(0)) == []
    again, = gate.on_signals(verdict(oracle, p), at(1))
    assert (again.subject, again.reasons) == (Subject.VERDICT, (Reason.REPLAYED_VERDICT,))
    assert gate.on_signals(verdict(oracle, p, '1.1.0'), at(2)) == []
    third, = gate.on_signals(verdict(oracle, p, '9.9.9'), at(3))
    assert (third.subject, third.reasons) == (Subject.VERDICT, (Reason.UNKNOWN_ORACLE_VERSION,))
    d, = gate.on_proposal(p, at(4))
    assert d.action == Action.ALLOW and len(d.verdicts) == 2
