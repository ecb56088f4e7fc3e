"""Escalations: the Gate holds the robot, asks the verifier about the exact digest, and only a
signed, fresh, in-sequence answer for that digest ends it; a safe one approves what the verdict
allowed if every check of an approval still holds. One test per way an answer can fail to count,
each asserting the exact reason; a bad answer decides nothing and cannot hijack the genuine one."""
from __future__ import annotations

import dataclasses
import math

import pytest

from flywheel.auth import load_message_key
from flywheel.enforcement.decision import Action, Reason, Subject
from flywheel.enforcement.gate import Gate
from flywheel.release.root import load_root
from flywheel.verifier_answer import VerifierAnswer, answer_problem
from test.enforcement.test_gate import EPOCH, at, prop, robot_at
from test.enforcement.test_gate_auth import (CONFIG, gate, keys, oracle,  # noqa: F401
                                             signed_proposal, status, verdict)

MS = 1_000_000
SEQ = iter(range(1, 10**9))
UNCERTAIN = dict(coverage_uncertainty=0.9)      # above the spec's 0.5: the policy escalates


def answer(keys, p, t_ms, key='verifier.pem', safe=True, **changes) -> VerifierAnswer:  # noqa: F811
    a = VerifierAnswer(p.digest, '1.0.0', safe, 0 if safe else 2, '' if safe else 'shelf_a',
                       0.4, 1.5, 1.0, CONFIG.hold, (1.2, 0.7, 2.6, 1.3), int(t_ms * MS), EPOCH,
                       changes.pop('seq', next(SEQ)))
    a = dataclasses.replace(a, **changes)
    if key is None:
        return a
    k = load_message_key(keys / key)
    return dataclasses.replace(a, key_id=k.key_id, signature=k.sign(a.canonical_bytes()))


def escalate(gate, oracle, keys, t_ms=0.0, seq=1, raw=b'proposal bytes', **changes):  # noqa: F811
    p = signed_proposal(keys, prop(seq=seq, stamp_ms=t_ms))
    assert gate.on_proposal(p, at(t_ms), raw=raw) == []
    d, = gate.on_signals(verdict(oracle, keys, p, t_ms, **{**UNCERTAIN, **changes}), at(t_ms))
    assert d.action == Action.ESCALATE and d.subject == Subject.PROPOSAL
    return p


def test_escalate_holds_the_robot_and_asks_about_the_exact_digest_once(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, raw=b'as received')
    assert gate.command_at(at(0).steady_ns) is None
    request, = gate.take_requests()
    assert (request.proposal_id, request.proposal_digest, request.proposal, request.hold) == (
        p.proposal_id, p.digest, b'as received', CONFIG.hold)
    assert gate.take_requests() == []


def test_a_safe_answer_approves_the_command_the_verdict_allowed(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    a = answer(keys, p, 30)
    d, = gate.on_answer(a, at(30))
    assert (d.subject, d.action, d.command) == (Subject.VERIFICATION, Action.ALLOW, p.command)
    assert Reason.VERIFIED_SAFE in d.reasons and d.answer == a
    assert d.proposal_digest == p.digest and d.signals.proposal_digest == p.digest
    assert gate.command_at(at(31).steady_ns) == p.command
    assert gate.command_at(at(30 + CONFIG.command_timeout * 1000).steady_ns) is None


def test_a_safe_answer_keeps_a_degrade(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, collision_risk=0.5, safety_score=0.5)
    d, = gate.on_answer(answer(keys, p, 30), at(30))
    assert d.action == Action.DEGRADE and d.command == pytest.approx(
        gate.policy.degrade.apply(*p.command))


def test_an_unsafe_answer_blocks_and_withdraws_the_approval_in_force(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, seq=1)
    newer = signed_proposal(keys, prop(seq=2, stamp_ms=10))
    gate.on_proposal(newer, at(10))
    allowed, = gate.on_signals(verdict(oracle, keys, newer, 10), at(10))
    assert allowed.action == Action.ALLOW and gate.command_at(at(11).steady_ns) is not None
    d, = gate.on_answer(answer(keys, p, 30, safe=False), at(30))
    assert (d.action, d.reasons[0], d.command) == (Action.BLOCK, Reason.VERIFIED_UNSAFE, None)
    assert 'shelf_a' in d.findings[0].detail
    assert gate.command_at(at(31).steady_ns) is None


def test_no_answer_in_time_leaves_the_robot_stopped(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    assert gate.tick(at(99)) == []
    d, = gate.tick(at(100))
    assert (d.subject, d.action, d.reasons) == (Subject.VERIFICATION, Action.BLOCK,
                                                (Reason.VERIFY_TIMEOUT,))
    assert d.answer is None and gate.command_at(at(100).steady_ns) is None
    late, = gate.on_answer(answer(keys, p, 101), at(101))
    assert late.reasons == (Reason.UNKNOWN_PROPOSAL,) and late.command is None
    assert gate.command_at(at(101).steady_ns) is None


def test_an_answer_after_the_deadline_is_a_timeout_even_before_the_tick(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    d, = gate.on_answer(answer(keys, p, 100.001), at(100.001))
    assert (d.action, d.reasons) == (Action.BLOCK, (Reason.VERIFY_TIMEOUT,))
    assert d.answer is not None and gate.command_at(at(101).steady_ns) is None


@pytest.mark.parametrize('forge', ['unsigned', 'stranger', 'oracle_key', 'tampered'])
def test_a_forged_answer_decides_nothing_and_the_genuine_one_still_does(gate, oracle, keys,  # noqa: F811
                                                                         forge, tmp_path):
    p = escalate(gate, oracle, keys)
    if forge == 'unsigned':
        forged = answer(keys, p, 10, key=None)
    elif forge == 'stranger':
        from flywheel.auth import write_message_key
        k = write_message_key(tmp_path / 'mallory.pem')
        forged = answer(keys, p, 10, key=None)
        forged = dataclasses.replace(forged, key_id=k.key_id,
                                     signature=k.sign(forged.canonical_bytes()))
    elif forge == 'oracle_key':
        forged = answer(keys, p, 10, key='oracle.pem')
    else:
        forged = dataclasses.replace(answer(keys, p, 10, safe=False), safe=True, reason=0,
                                     detail='')
    ignored, = gate.on_answer(forged, at(10))
    assert (ignored.subject, ignored.reasons, ignored.command) == (
        Subject.VERIFICATION, (Reason.BAD_SIGNATURE,), None)
    assert ignored.proposal_id == p.proposal_id and gate.command_at(at(10).steady_ns) is None
    d, = gate.on_answer(answer(keys, p, 20), at(20))
    assert d.action == Action.ALLOW


def test_a_replayed_answer_releases_nothing_more(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, seq=1)
    first = answer(keys, p, 10)
    assert gate.on_answer(first, at(10))[0].action == Action.ALLOW
    again = escalate(gate, oracle, keys, 20, seq=2)
    replayed = dataclasses.replace(first, proposal_digest=again.digest)    # not re-signed
    assert gate.on_answer(replayed, at(30))[0].reasons == (Reason.BAD_SIGNATURE,)
    assert gate.on_answer(first, at(30))[0].reasons == (Reason.REPLAYED_VERDICT,)
    older = answer(keys, again, 30, seq=first.seq)          # genuinely signed, but not newer
    assert gate.on_answer(older, at(30))[0].reasons == (Reason.REPLAYED_VERDICT,)
    assert gate.on_answer(answer(keys, again, 31), at(31))[0].action == Action.ALLOW


def test_an_answer_for_another_digest_decides_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    other = answer(keys, p, 10, proposal_digest='0' * 64)
    ignored, = gate.on_answer(other, at(10), asked=p.digest)
    assert ignored.reasons == (Reason.UNKNOWN_PROPOSAL,) and ignored.command is None
    assert (ignored.proposal_id, ignored.proposal_digest) == (p.proposal_id, '0' * 64)
    assert gate.on_answer(answer(keys, p, 11), at(11))[0].action == Action.ALLOW


def test_an_answer_stamped_before_the_question_decides_nothing(gate, oracle, keys):  # noqa: F811
    robot_at(gate, 1.5, 1.0, 0.0, stamp_ms=200)
    p = escalate(gate, oracle, keys, t_ms=200)
    old = answer(keys, p, 200 - CONFIG.max_clock_skew * 1000 - 1)
    assert gate.on_answer(old, at(210))[0].reasons == (Reason.STALE_VERDICT,)
    assert gate.on_answer(answer(keys, p, 215), at(215))[0].action == Action.ALLOW


@pytest.mark.parametrize('change', ['stamp', 'epoch'])
def test_an_answer_from_the_future_decides_nothing(gate, oracle, keys, change):  # noqa: F811
    p = escalate(gate, oracle, keys)
    ahead = (answer(keys, p, 10 + CONFIG.max_clock_skew * 1000 + 1) if change == 'stamp'
             else answer(keys, p, 10, epoch=at(10).wall_ns + 10**9))
    assert gate.on_answer(ahead, at(10))[0].reasons == (Reason.FUTURE_STAMP,)
    assert gate.on_answer(answer(keys, p, 11), at(11))[0].action == Action.ALLOW


@pytest.mark.parametrize('change', [
    dict(reason=3), dict(safe=False, reason=0), dict(region=(0.0, 0.0, math.nan, 1.0)),
    dict(region=(2.0, 0.0, 1.0, 1.0)), dict(x=math.inf), dict(hold=-1.0),
    dict(min_clearance=math.nan), dict(detail='x' * 257), dict(oracle_version='v' * 65)])
def test_a_malformed_answer_decides_nothing(gate, oracle, keys, change):  # noqa: F811
    p = escalate(gate, oracle, keys)
    bad = answer(keys, p, 10, **change)
    assert answer_problem(bad) is not None
    assert gate.on_answer(bad, at(10))[0].reasons == (Reason.MALFORMED,)
    assert gate.on_answer(answer(keys, p, 11), at(11))[0].action == Action.ALLOW


def test_an_answer_covering_a_shorter_hold_approves_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    d, = gate.on_answer(answer(keys, p, 10, hold=CONFIG.hold / 2), at(10))
    assert (d.action, d.reasons[0]) == (Action.BLOCK, Reason.HOLD_NOT_COVERED)
    assert gate.command_at(at(10).steady_ns) is None


def test_an_answer_from_knowledge_of_an_unaccepted_release_approves_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    d, = gate.on_answer(answer(keys, p, 10, oracle_version='0.9.0'), at(10))
    assert (d.action, d.reasons[0]) == (Action.BLOCK, Reason.UNKNOWN_ORACLE_VERSION)


def test_versions_withdrawn_meanwhile_approve_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    assert gate.on_status(status(keys, accepted=('2.0.0',), t_ms=5), at(5)) is None
    d, = gate.on_answer(answer(keys, p, 10, oracle_version='2.0.0'), at(10))
    assert d.action == Action.BLOCK and Reason.UNKNOWN_ORACLE_VERSION in d.reasons


def test_the_robot_must_still_be_where_the_proposal_starts(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys)
    robot_at(gate, 1.7, 1.0, 0.0, stamp_ms=20)
    d, = gate.on_answer(answer(keys, p, 30), at(30))
    assert (d.action, d.reasons[0]) == (Action.BLOCK, Reason.START_POSE_MISMATCH)


def test_stale_odometry_at_the_answer_approves_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, t_ms=90)
    d, = gate.on_answer(answer(keys, p, 150), at(150))    # odometry from t=0, odom_timeout 0.1 s
    assert (d.action, d.reasons[0]) == (Action.BLOCK, Reason.STALE_ODOMETRY)


def test_a_verdict_gone_stale_by_the_answer_approves_nothing(gate, oracle, keys):  # noqa: F811
    p = signed_proposal(keys, prop(stamp_ms=0))
    robot_at(gate, 1.5, 1.0, 0.0, stamp_ms=150)
    gate.on_proposal(p, at(150))
    d, = gate.on_signals(verdict(oracle, keys, p, 0, **UNCERTAIN), at(150))
    assert d.action == Action.ESCALATE
    d, = gate.on_answer(answer(keys, p, 210), at(210))
    assert d.action == Action.BLOCK and Reason.STALE_VERDICT in d.reasons


def test_an_escalation_superseded_by_a_newer_approval_approves_nothing(gate, oracle, keys):  # noqa: F811
    p = escalate(gate, oracle, keys, seq=1)
    newer = signed_proposal(keys, prop(seq=2, stamp_ms=10))
    gate.on_proposal(newer, at(10))
    gate.on_signals(verdict(oracle, keys, newer, 10), at(10))
    d, = gate.on_answer(answer(keys, p, 20), at(20))
    assert d.action == Action.BLOCK and Reason.STALE_PROPOSAL in d.reasons
    assert gate.command_at(at(20).steady_ns) == newer.command      # the newer one stays


def test_too_many_escalations_give_the_oldest_up(gate, oracle, keys):  # noqa: F811
    first = escalate(gate, oracle, keys, seq=1)
    for seq in range(2, CONFIG.max_pending + 1):
        escalate(gate, oracle, keys, seq=seq)
    p = signed_proposal(keys, prop(seq=CONFIG.max_pending + 1))
    gate.on_proposal(p, at(0))
    escalated, given_up = gate.on_signals(verdict(oracle, keys, p, 0, **UNCERTAIN), at(0))
    assert escalated.action == Action.ESCALATE
    assert (given_up.proposal_id, given_up.subject, given_up.reasons) == (
        first.proposal_id, Subject.VERIFICATION, (Reason.OVERLOAD,))


def test_every_escalation_ends_in_exactly_one_verification_record(gate, oracle, keys):  # noqa: F811
    records = []
    answered = [escalate(gate, oracle, keys, seq=1), escalate(gate, oracle, keys, seq=2)]
    silent = escalate(gate, oracle, keys, seq=3)
    records += gate.on_answer(answer(keys, answered[0], 10, safe=False), at(10))
    records += gate.on_answer(answer(keys, answered[1], 20), at(20))
    for t in range(30, 200, 20):
        records += gate.tick(at(t))
    ended = [(d.proposal_id, d.subject) for d in records]
    assert sorted(ended) == sorted((p.proposal_id, Subject.VERIFICATION)
                                   for p in (*answered, silent))


def test_a_root_naming_no_verifier_releases_nothing(policy, oracle, keys, tmp_path):  # noqa: F811
    root = load_root((keys / 'root.json').read_bytes())
    root.signed.unrecognized_fields['x-flywheel-signers']['verifier'] = []
    g = Gate(policy, CONFIG, root)
    robot_at(g, 1.5, 1.0, 0.0)
    g.on_status(status(keys), at(0))
    p = escalate(g, oracle, keys)
    assert g.on_answer(answer(keys, p, 10), at(10))[0].reasons == (Reason.BAD_SIGNATURE,)


def test_an_unsafe_answer_that_checked_nothing_still_ends_the_escalation(gate, oracle, keys):  # noqa: F811
    """The verifier could not read the request (MALFORMED: where, clearance and region unknown):
    unsafe, so the escalation ends at once, stopped, instead of waiting for the timeout."""
    p = escalate(gate, oracle, keys)
    nothing = answer(keys, p, 10, safe=False, reason=7, detail='unreadable proposal',
                     x=math.nan, y=math.nan, min_clearance=math.nan,
                     region=(math.nan,) * 4)
    d, = gate.on_answer(nothing, at(10))
    assert (d.action, d.reasons[0], d.command) == (Action.BLOCK, Reason.VERIFIED_UNSAFE, None)
    assert p.digest not in gate.escalations
