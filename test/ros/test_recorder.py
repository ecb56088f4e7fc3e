"""The demo's Recorder pairs every proposal with its decision whichever arrives first: the two
come from different processes, and on a loaded machine the Gate's decision can overtake the
Proposer's proposal (seen in `flywheel demo` with both cores busy)."""
from __future__ import annotations

import pytest

from alignment_flywheel.msg import GateDecision
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.report import RunRecord
from flywheel.ros import qos, topics
from flywheel.ros.convert import proposal_to_msg
from flywheel.ros.recorder import Recorder
from test.helpers import straight
from test.ros.conftest import wait_matched

pytestmark = pytest.mark.ros


@pytest.fixture
def recorder(probe):
    node = Recorder(RunRecord('gated'), gated=True, context=probe.node.context)
    probe.executor.add_node(node)
    try:
        yield node
    finally:
        probe.executor.remove_node(node)
        node.destroy_node()


@pytest.fixture
def wires(probe, recorder):
    """The probe's publishers of proposals and decisions, matched with the recorder."""
    proposals = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    decisions = probe.node.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.STREAM)
    wait_matched(probe, proposals)
    wait_matched(probe, decisions)
    return proposals, decisions


def _decision(proposal_id: str, action: int,
              subject: int = GateDecision.SUBJECT_PROPOSAL) -> GateDecision:
    return GateDecision(proposal_id=proposal_id, action=action, subject=subject)


def test_a_decision_that_overtakes_its_proposal_is_counted(probe, recorder, wires):
    proposals, decisions = wires
    early, ordered = straight(0.0, 0.0, 0.0, 0.3, seq=1), straight(0.0, 0.0, 0.0, 0.3, seq=2)

    decisions.publish(_decision(early.proposal_id, GateDecision.ACTION_BLOCK))
    assert probe.spin_until(lambda: early.proposal_id in recorder.early, 10.0)
    assert recorder.undecided == 0 and sum(recorder.record.actions.values()) == 0
    proposals.publish(proposal_to_msg(early))
    assert probe.spin_until(lambda: recorder.record.proposals == 1, 10.0)

    proposals.publish(proposal_to_msg(ordered))
    assert probe.spin_until(lambda: recorder.undecided == 1, 10.0)
    decisions.publish(_decision(ordered.proposal_id, GateDecision.ACTION_ALLOW))
    assert probe.spin_until(lambda: recorder.undecided == 0, 10.0)

    assert recorder.record.proposals == 2 and not recorder.early
    assert dict(recorder.record.actions) == {'BLOCK': 1, 'ALLOW': 1}
    assert len(recorder.record.blocked) == 1          # the blocked one is drawn on the map


def test_after_close_no_proposal_is_counted_but_pending_decisions_are(probe, recorder, wires):
    proposals, decisions = wires
    counted, late = straight(0.0, 0.0, 0.0, 0.3, seq=1), straight(0.0, 0.0, 0.0, 0.3, seq=2)
    proposals.publish(proposal_to_msg(counted))
    assert probe.spin_until(lambda: recorder.undecided == 1, 10.0)

    recorder.close()
    proposals.publish(proposal_to_msg(late))
    decisions.publish(_decision(late.proposal_id, GateDecision.ACTION_ALLOW))
    # a verification (or verdict) record names the proposal too, but is not its decision
    decisions.publish(_decision(counted.proposal_id, GateDecision.ACTION_BLOCK,
                                GateDecision.SUBJECT_VERIFICATION))
    decisions.publish(_decision(counted.proposal_id, GateDecision.ACTION_ALLOW))
    assert probe.spin_until(lambda: recorder.undecided == 0, 10.0)
    assert recorder.record.proposals == 1 and dict(recorder.record.actions) == {'ALLOW': 1}
    assert not recorder.early


def test_proposals_older_than_the_first_decided_never_reached_the_gate(probe, recorder, wires):
    """The record starts at the first decision on a proposal; proposals published before the Gate
    had matched the Proposer (older than the first one decided) leave the count, and one newer
    than it without a decision stays undecided."""
    proposals, decisions = wires
    unheard, decided, lost = (straight(0.0, 0.0, 0.0, 0.3, seq=n) for n in (1, 2, 3))
    # an ignored verdict names a proposal too, but says nothing of the Gate hearing the Proposer
    decisions.publish(_decision(unheard.proposal_id, GateDecision.ACTION_BLOCK,
                                GateDecision.SUBJECT_VERDICT))
    decisions.publish(_decision(decided.proposal_id, GateDecision.ACTION_ALLOW))
    assert probe.spin_until(lambda: decided.proposal_id in recorder.early, 10.0)
    for p in (unheard, decided, lost):
        proposals.publish(proposal_to_msg(p))
    assert probe.spin_until(lambda: recorder.record.proposals == 3, 10.0)

    assert recorder.undecided == 1            # `lost`; `unheard` is older than the first decided
    recorder.finish()
    assert recorder.record.proposals == 2 and recorder.record.undecided == 1
    assert dict(recorder.record.actions) == {'ALLOW': 1}
