"""The Gate's binding rules, one test per way a verdict can fail to bind, its own clock, and a
property: no command without an approving verdict for that exact digest."""
import dataclasses
import math

import pytest
from hypothesis import given, settings, strategies as st

from flywheel.enforcement.decision import Action, Reason
from flywheel.enforcement.gate import STOP, Gate, GateConfig
from flywheel.oracle.oracle import Oracle
from flywheel.proposal import ProposalLimits
from test.helpers import straight

MS = 1_000_000
CONFIG = GateConfig(accepted_oracle_versions=('1.0.0',), command_timeout=0.3, tick_period=0.02,
                    verdict_timeout=0.25, signal_timeout=0.2, proposal_timeout=0.5, max_pending=4)


@pytest.fixture
def gate(policy):
    return Gate(policy, CONFIG)


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits())


def verdict(oracle, proposal, stamp_ns, **changes):
    return dataclasses.replace(oracle.evaluate(proposal), stamp_ns=stamp_ns, **changes)


def test_safe_proposal_is_allowed_and_its_command_published(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5, stamp_ns=0)
    assert gate.on_proposal(p, 1 * MS) == []
    d = gate.on_signals(verdict(oracle, p, 5 * MS), 6 * MS)
    assert d.action == Action.ALLOW and d.command == (0.5, 0.0)
    assert d.proposal_digest == p.digest and d.latency_ns == 6 * MS
    assert gate.has_fresh_approval(6 * MS)


def test_degrade_publishes_the_limited_command(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    d = gate.on_signals(verdict(oracle, p, 0, collision_risk=0.5, safety_score=0.5), 0)
    assert d.action == Action.DEGRADE and d.command == (0.25, 0.0)


def test_collision_is_blocked_and_the_approval_withdrawn(gate, oracle):
    safe, unsafe = straight(1.5, 1.0, 0.0, 0.5, seq=1), straight(3.0, 4.0, 0.0, 0.9, seq=2)
    gate.on_proposal(safe, 0)
    gate.on_signals(verdict(oracle, safe, 0), 0)
    gate.on_proposal(unsafe, 0)
    d = gate.on_signals(verdict(oracle, unsafe, 0), 1 * MS)
    assert d.action == Action.BLOCK and d.command is None
    assert not gate.has_fresh_approval(1 * MS)


def test_wrong_digest_is_blocked(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    forged = verdict(oracle, straight(1.5, 1.0, 0.0, 0.4), 0, proposal_id=p.proposal_id)
    d = gate.on_signals(forged, 0)
    assert (d.action, d.findings[0].reason, d.command) == (Action.BLOCK,
                                                          Reason.DIGEST_MISMATCH, None)


def test_unknown_oracle_version_is_blocked(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    d = gate.on_signals(verdict(oracle, p, 0, oracle_version='0.9.0'), 0)
    assert d.reasons == (Reason.UNKNOWN_ORACLE_VERSION,) and d.command is None


def test_stale_verdict_is_blocked(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5, stamp_ns=300 * MS)
    gate.on_proposal(p, 300 * MS)
    d = gate.on_signals(verdict(oracle, p, 99 * MS), 300 * MS)
    assert d.reasons == (Reason.STALE_VERDICT,) and d.command is None


def test_verdict_from_the_future_is_blocked(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    d = gate.on_signals(verdict(oracle, p, 10 * MS), 0)
    assert d.reasons == (Reason.STALE_VERDICT,)


def test_stale_proposal_is_blocked_on_arrival(gate):
    d, = gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, stamp_ns=0), 501 * MS)
    assert d.reasons == (Reason.STALE_PROPOSAL,) and d.command is None


def test_verdict_for_a_proposal_that_never_comes_is_blocked_after_the_timeout(gate, oracle):
    assert gate.on_signals(verdict(oracle, straight(1.5, 1.0, 0.0, 0.5), 0), 0) is None
    assert gate.tick(249 * MS)[0] == []
    d, = gate.tick(250 * MS)[0]
    assert (d.action, d.reasons, d.command) == (Action.BLOCK, (Reason.UNKNOWN_PROPOSAL,), None)


def test_a_verdict_that_overtakes_its_proposal_still_decides_it(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5, stamp_ns=0)
    assert gate.on_signals(verdict(oracle, p, 1 * MS), 1 * MS) is None
    d, = gate.on_proposal(p, 2 * MS)
    assert d.action == Action.ALLOW and d.command == (0.5, 0.0)
    assert gate.tick(500 * MS)[0] == []          # decided once, nothing left to time out


def test_a_flood_of_orphan_verdicts_is_bounded(gate, oracle):
    decided = [gate.on_signals(verdict(oracle, straight(1.5, 1.0, 0.0, 0.5, seq=i), 0), 0)
               for i in range(1, 7)]
    assert [d.proposal_id for d in decided if d] == ['proposer/1', 'proposer/2']   # max_pending 4


def test_a_replayed_verdict_releases_nothing(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    v = verdict(oracle, p, 0)
    assert gate.on_signals(v, 0).action == Action.ALLOW
    assert gate.on_signals(v, 1 * MS) is None        # already decided: dropped, not re-decided


def test_a_replayed_proposal_is_blocked(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5, seq=5, stamp_ns=10 * MS)
    gate.on_proposal(p, 10 * MS)
    gate.on_signals(verdict(oracle, p, 10 * MS), 10 * MS)
    d, = gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, seq=5, stamp_ns=10 * MS), 20 * MS)
    assert Reason.REPLAYED_SEQ in d.reasons and d.command is None


def test_a_restarted_proposer_with_a_lower_seq_but_newer_stamp_is_accepted(gate, oracle):
    gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, seq=50, stamp_ns=10 * MS), 10 * MS)
    assert gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, seq=1, stamp_ns=20 * MS), 20 * MS) == []


def test_an_older_proposal_approved_after_a_newer_one_is_superseded(gate, oracle):
    old, new = straight(1.5, 1.0, 0.0, 0.5, seq=1), straight(1.5, 1.0, 0.0, 0.4, seq=2)
    gate.on_proposal(old, 0)
    gate.on_proposal(new, 0)
    assert gate.on_signals(verdict(oracle, new, 0), 0).action == Action.ALLOW
    d = gate.on_signals(verdict(oracle, old, 0), 0)
    assert d.reasons == (Reason.STALE_PROPOSAL,) and d.command is None


@pytest.mark.parametrize('mutate, reason', [
    (lambda p: p.states.__setitem__((2, 0), math.nan), Reason.NON_FINITE),
    (lambda p: p.t_ns.__setitem__(3, 0), Reason.NON_MONOTONIC_TIME),
])
def test_malformed_proposals_are_blocked_on_arrival(gate, mutate, reason):
    p = straight(1.5, 1.0, 0.0, 0.5)
    mutate(p)
    d, = gate.on_proposal(p, 0)
    assert reason in d.reasons and d.action == Action.BLOCK and d.command is None


@pytest.mark.parametrize('kwargs, reason', [
    (dict(points=201), Reason.TOO_MANY_POINTS), (dict(frame_id='odom'), Reason.WRONG_FRAME),
    (dict(proposer_id='mallory'), Reason.UNKNOWN_PROPOSER)])
def test_proposals_outside_the_limits_are_blocked(gate, kwargs, reason):
    d, = gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, **kwargs), 0)
    assert d.reasons == (reason,)


def test_a_proposal_without_verdict_times_out_once(gate):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    assert gate.tick(249 * MS)[0] == []
    decisions, stop = gate.tick(250 * MS)
    assert [d.reasons for d in decisions] == [(Reason.NO_VERDICT,)] and stop
    assert gate.tick(300 * MS)[0] == []


def test_a_full_queue_decides_the_oldest(gate):
    decided = []
    for seq in range(1, 6):
        decided += gate.on_proposal(straight(1.5, 1.0, 0.0, 0.5, seq=seq, stamp_ns=seq), seq)
    assert [d.proposal_id for d in decided] == ['proposer/1']
    assert decided[0].reasons == (Reason.NO_VERDICT,)


def test_stop_until_approved_then_stop_again_after_command_timeout(gate, oracle):
    assert gate.tick(0)[1] is True
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    gate.on_signals(verdict(oracle, p, 0), 0)
    assert gate.tick(280 * MS)[1] is False          # still approved at the next tick (300 ms)
    assert gate.tick(280 * MS + 1)[1] is True       # would outlive command_timeout by the next


def test_the_tick_must_be_shorter_than_the_command_timeout():
    with pytest.raises(ValueError, match='tick_period'):
        GateConfig(command_timeout=0.1, tick_period=0.1)


def test_internal_failure_falls_back_to_stop(gate, oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    gate.on_proposal(p, 0)
    gate.on_signals(verdict(oracle, p, 0), 0)
    from flywheel.enforcement.decision import Finding
    d = gate.fallback('p/x', 'proposer', Finding(Action.FALLBACK, Reason.INTERNAL_ERROR, 'x'), 1)
    assert d.command == STOP and not gate.has_fresh_approval(1)


# -- property -------------------------------------------------------------------------------------

events = st.lists(st.tuples(
    st.sampled_from(['propose', 'honest', 'forge_digest', 'forge_version', 'stale', 'replay',
                     'tick']),
    st.integers(0, 7),                       # which proposal
    st.sampled_from([0.3, 0.5, 0.9, 1.4]),   # speed (1.4 is over the limit)
    st.integers(1, 120)),                    # ms to advance
    max_size=60)


@settings(max_examples=300, deadline=None)
@given(events)
def test_no_command_without_an_approving_verdict_for_that_exact_digest(policy, oracle, script):
    gate = Gate(policy, CONFIG)
    now, proposals, last_verdict, sent = 0, {}, {}, []
    honest = set()   # digests for which an honest (exact, accepted, fresh) verdict was sent
    for kind, idx, speed, step in script:
        now += step * MS
        decisions = []
        if kind == 'propose':
            p = straight(3.0, 4.0 - idx * 0.4, 0.0, speed, seq=len(proposals) + 1, stamp_ns=now)
            proposals[idx] = p
            decisions = gate.on_proposal(p, now)
        elif kind == 'tick':
            decisions = gate.tick(now)[0]
        elif kind == 'replay':
            if idx not in last_verdict:
                continue
            decision = gate.on_signals(last_verdict[idx], now)
            decisions = [decision] if decision is not None else []
        elif idx in proposals:
            p = proposals[idx]
            v = verdict(oracle, p, now)
            flattering = dict(safety_score=1.0, collision_risk=0.0, constraint_risk=0.0)
            if kind == 'forge_digest':
                v = dataclasses.replace(v, proposal_digest='0' * 64, **flattering)
            elif kind == 'forge_version':
                v = dataclasses.replace(v, oracle_version='6.6.6', **flattering)
            elif kind == 'stale':
                v = dataclasses.replace(v, stamp_ns=now - 400 * MS, **flattering)
            else:
                honest.add(p.digest)
            last_verdict[idx] = v
            decision = gate.on_signals(v, now)
            decisions = [decision] if decision is not None else []
        sent += [d for d in decisions if d.command is not None and d.command != STOP]
    for d in sent:
        assert d.action.approves
        assert d.proposal_digest in honest, 'command released without an honest verdict'
