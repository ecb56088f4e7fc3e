"""Escalation over real DDS: a Gate process asks a verifier process about the exact proposal it
escalated. A safe, signed answer releases the command (recorded, with the answer, in the ledger);
a verifier killed or frozen, a forged or a replayed answer release nothing: the robot stays
stopped, with the reason on the record."""
from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from alignment_flywheel.msg import GateDecision
from alignment_flywheel.srv import Verify
from flywheel.auth import load_message_key
from flywheel.errors import LedgerError
from flywheel.ros.answer_msgs import answer_from_msg, answer_to_msg
from flywheel.verifier_answer import VerifierAnswer
from test.audit.conftest import records_in
from test.conftest import KEYS
from test.ros.conftest import GateIO, decision_for, health, moving, values

pytestmark = pytest.mark.ros

UNCERTAIN = dict(coverage_uncertainty=0.9)       # above the spec's 0.5: the policy escalates


def verification_for(io: GateIO, p, timeout: float = 5.0, count: int = 1) -> list:
    """The VERIFICATION records about p (waits for ``count`` of them)."""
    def found():
        return [d for d in io.decisions_for(p)
                if d.subject == GateDecision.SUBJECT_VERIFICATION]
    assert io.probe.spin_until(lambda: len(found()) >= count, timeout), \
        f'no verification record for {p.proposal_id}: {io.decisions_for(p)}'
    return found()


def wait_verifier_ready(probe, ready: bool = True, timeout: float = 30.0) -> None:
    """The Gate says on /diagnostics whether it has a verifier service to ask."""
    reports = probe.collect(DiagnosticArray, '/diagnostics', 100)

    def said() -> bool:
        return any(values(s).get('verifier_ready') == str(ready)
                   for s in health(reports[-20:], 'gate'))
    assert probe.spin_until(said, timeout), f'the gate never said verifier_ready={ready}'


def escalate(io: GateIO):
    """A proposal the Oracle is unsure about (coverage): decided ESCALATE, the robot held."""
    p = io.propose()
    io.verdict(p, **UNCERTAIN)
    d = decision_for(io, p)
    assert d.action == GateDecision.ACTION_ESCALATE          # stop published: held
    assert (d.command.linear.x, d.command.angular.z) == (0.0, 0.0)
    return p


def recorded(ledger, **filters) -> list[dict]:
    try:
        return records_in(ledger, **filters)
    except LedgerError:
        return []


@pytest.fixture
def graph(probe, start_graph, spec, tmp_path):
    """A verifier and an audit, then a Gate driven by the probe."""
    ledger = tmp_path / 'audit.sqlite'
    others = start_graph(['verifier', 'audit'], {
        'verifier': {'ledger_path': str(ledger)}, 'audit': {'ledger_path': str(ledger)}})
    io = GateIO.start(probe, start_graph, spec)
    wait_verifier_ready(probe)
    yield io, others, ledger
    io.odometry.close()


def test_a_safe_answer_releases_the_escalated_command_and_both_are_recorded(graph):
    io, _, ledger = graph
    p = escalate(io)
    v, = verification_for(io, p)
    assert (v.action, v.command_published, v.command.linear.x) == (
        GateDecision.ACTION_ALLOW, True, 0.5)
    assert GateDecision.REASON_VERIFIED_SAFE in v.reasons and v.proposal_digest == p.digest
    answer = v.answer[0]
    assert answer.safe and answer.proposal_digest == p.digest
    assert answer.key_id == load_message_key(KEYS / 'verifier.pem').key_id
    assert io.probe.spin_until(lambda: moving(io.commands), 2.0)
    assert moving(io.commands)[0].linear.x == 0.5

    def on_record():
        return [r for r in recorded(ledger, kind='decision') if r['proposal_id'] == p.proposal_id]
    assert io.probe.spin_until(lambda: len(on_record()) == 2, 10.0)
    proposal, verification = sorted(on_record(), key=lambda r: r['subject'] != 'PROPOSAL')
    assert (proposal['subject'], proposal['action']) == ('PROPOSAL', 'ESCALATE')
    assert (verification['subject'], verification['action']) == ('VERIFICATION', 'ALLOW')
    assert verification['answer']['safe'] and verification['answer']['signature']


@pytest.mark.parametrize('how', ['killed', 'frozen'])
def test_without_an_answer_in_time_the_robot_stays_stopped(graph, how):
    io, others, ledger = graph
    pid = others.processes['verifier'].pid
    os.kill(pid, signal.SIGKILL if how == 'killed' else signal.SIGSTOP)
    try:
        if how == 'killed':
            others.processes['verifier'].wait(timeout=10)
        n = len(io.commands)
        p = escalate(io)
        v, = verification_for(io, p)
        assert (v.action, list(v.reasons), v.command_published) == (
            GateDecision.ACTION_BLOCK, [GateDecision.REASON_VERIFY_TIMEOUT], False)
        assert not v.answer
        io.probe.spin_for(0.3)
        assert len(io.commands) > n and not moving(io.commands)
    finally:
        if how == 'frozen':
            os.kill(pid, signal.SIGCONT)
    if how == 'frozen':
        # thawed, its answer to the old question finds nobody waiting (the Gate dropped the
        # request at its deadline); the next escalation is answered again
        io.probe.spin_for(0.5)
        assert not moving(io.commands)
        assert len(verification_for(io, p)) == 1
        q = escalate(io)
        assert verification_for(io, q)[0].action == GateDecision.ACTION_ALLOW


class Impostor:
    """A service under the verifier's name answering whatever ``answer(request)`` makes."""

    def __init__(self, probe, answer):
        self.calls = []

        def serve(request, response):
            self.calls.append(request)
            response.answer = answer_to_msg(answer(request))
            return response
        self.service = probe.node.create_service(Verify, '/verifier/verify', serve)


def safe_answer(probe, request, key: str | None, seq: int) -> VerifierAnswer:
    a = VerifierAnswer(request.proposal_digest, '1.0.0', True, 0, '', 0.5, 1.5, 1.0,
                       request.hold, (1.0, 0.7, 3.0, 1.3), probe.now_ns(), 1, seq)
    if key is None:
        return a
    k = load_message_key(KEYS / key)
    return dataclasses.replace(a, key_id=k.key_id, signature=k.sign(a.canonical_bytes()))


@pytest.mark.parametrize('key', [None, 'oracle.pem'])
def test_a_forged_answer_releases_nothing(probe, start_graph, spec, key):
    io = GateIO.start(probe, start_graph, spec)
    try:
        impostor = Impostor(probe, lambda r: safe_answer(probe, r, key, len(impostor.calls)))
        wait_verifier_ready(probe)
        p = escalate(io)
        forged, timeout = verification_for(io, p, count=2)
        assert impostor.calls and impostor.calls[0].proposal_digest == p.digest
        assert (forged.action, list(forged.reasons), forged.command_published) == (
            GateDecision.ACTION_BLOCK, [GateDecision.REASON_BAD_SIGNATURE], False)
        assert forged.answer[0].safe               # it said safe; it was not believed
        assert list(timeout.reasons) == [GateDecision.REASON_VERIFY_TIMEOUT]
        io.probe.spin_for(0.3)
        assert not moving(io.commands)
    finally:
        io.odometry.close()


def test_a_replayed_genuine_answer_releases_nothing(graph):
    io, others, _ = graph
    p = escalate(io)
    genuine = verification_for(io, p)[0].answer[0]
    assert genuine.safe
    others.processes['verifier'].kill()
    others.processes['verifier'].wait(timeout=10)
    impostor = Impostor(io.probe, lambda r: answer_from_msg(genuine))
    escalated = []

    def records():
        return [d for q in escalated for d in verification_for(io, q)]

    def replayed() -> bool:        # once the Gate has heard the impostor answer in time
        return any(GateDecision.REASON_REPLAYED_VERDICT in r.reasons for r in records())
    for _ in range(20):
        escalated.append(escalate(io))
        verification_for(io, escalated[-1])
        if io.probe.spin_until(replayed, 0.3):
            break
    assert replayed(), f'the impostor was asked {len(impostor.calls)} times, never heard'
    assert impostor.calls
    assert not any(r.action <= GateDecision.ACTION_DEGRADE or r.command_published
                   for r in records())
    io.probe.spin_for(0.3)
    assert not moving(io.commands[-10:])
