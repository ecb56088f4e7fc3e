"""The verifier node over real DDS: every request is answered, signed by the verifier key, numbered;
only a well-formed proposal whose bytes digest to what was asked can be SAFE; incidents heard on
the topic or recorded in the ledger become regions it keeps out of; it answers within its
deadline; following governance it says nothing is safe until a release arrives."""
from __future__ import annotations

from array import array

import pytest

from alignment_flywheel.msg import Incident
from alignment_flywheel.srv import Verify
from flywheel.audit.incident import IncidentReport
from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger
from flywheel.audit.record import RecordKind
from flywheel.auth import Keyring, load_message_key
from flywheel.release.root import load_root
from flywheel.ros import qos, topics
from flywheel.ros.answer_msgs import answer_from_msg
from flywheel.ros.convert import to_time
from flywheel.verify.verifier import VerifyReason
from test.conftest import KEYS
from test.helpers import straight
from test.ros.conftest import signed_bytes, wait_matched

pytestmark = pytest.mark.ros

HOLD = 0.32


class Asker:
    """The probe as a Gate would ask: proposals as bytes, answers back."""

    def __init__(self, probe, name='/verifier/verify'):
        self.probe = probe
        self.client = probe.node.create_client(Verify, name)
        assert self.client.wait_for_service(timeout_sec=30.0), 'no verifier service'
        self.proposer = load_message_key(KEYS / 'proposer.pem')
        self.seq = 0

    def proposal(self, x=1.5, y=1.0, yaw=0.0, v=0.5, **kwargs):
        self.seq += 1
        return signed_bytes(straight(x, y, yaw, v, seq=self.seq, stamp_ns=self.probe.now_ns(),
                                     **kwargs), self.proposer)

    def ask(self, raw: bytes, digest: str, hold: float = HOLD):
        future = self.client.call_async(Verify.Request(proposal=array('B', raw),
                                                       proposal_digest=digest, hold=hold))
        assert self.probe.spin_until(future.done, 10.0), 'no answer'
        return answer_from_msg(future.result().answer)

    def about(self, **kwargs):
        p, raw = self.proposal(**kwargs)
        return p, self.ask(raw, p.digest)


def keyring():
    return Keyring.from_root(load_root((KEYS / 'root.json').read_bytes()))


def signed_by_verifier(answer) -> bool:
    return keyring().check('verifier', answer.key_id, answer.signature,
                           answer.canonical_bytes()) is None


@pytest.fixture
def asker(probe, start_graph, tmp_path):
    start_graph(['verifier'], {'verifier': {'ledger_path': str(tmp_path / 'none.sqlite')}})
    return Asker(probe)


def test_a_clear_proposal_is_verified_safe_signed_and_numbered(asker):
    p, first = asker.about()
    assert first.safe and first.reason == VerifyReason.SAFE and first.proposal_digest == p.digest
    assert signed_by_verifier(first) and first.oracle_version == '1.0.0'
    assert first.hold == HOLD and first.region[0] <= 1.5 <= first.region[2]
    assert first.elapsed_ns < 50_000_000
    _, second = asker.about()
    assert (second.epoch, second.seq) == (first.epoch, first.seq + 1)


def test_a_proposal_into_an_obstacle_is_unsafe(asker):
    p, answer = asker.about(x=3.2, y=4.0, v=0.8)         # shelf_a starts at x = 4.0
    assert not answer.safe and answer.reason == VerifyReason.COLLISION
    assert 'shelf_a' in answer.detail and signed_by_verifier(answer)


def test_bytes_that_do_not_digest_to_what_was_asked_are_not_safe(asker):
    p, raw = asker.proposal()
    answer = asker.ask(raw, '0' * 64)
    assert not answer.safe and answer.reason == VerifyReason.MALFORMED
    assert answer.proposal_digest == p.digest and 'digest' in answer.detail


@pytest.mark.parametrize('raw', [b'', b'\x00\x01\x00\x00' + b'\xff' * 64])
def test_bytes_that_are_no_proposal_are_not_safe(asker, raw):
    answer = asker.ask(raw, 'a' * 64)
    assert not answer.safe and answer.reason == VerifyReason.MALFORMED
    assert answer.proposal_digest == 'a' * 64 and signed_by_verifier(answer)


def test_a_hold_it_cannot_check_is_not_safe(asker):
    p, raw = asker.proposal()
    answer = asker.ask(raw, p.digest, hold=600.0)
    assert not answer.safe and answer.reason == VerifyReason.MALFORMED


def test_an_incident_heard_on_the_topic_is_kept_out_of(asker, probe):
    pub = probe.node.create_publisher(Incident, topics.INCIDENTS, qos.STREAM)
    wait_matched(probe, pub)
    _, before = asker.about(y=2.0)
    assert before.safe
    msg = Incident(incident_id='sim/1', severity=Incident.SEVERITY_COLLISION,
                   reporter='sim', object_id='spill')
    msg.header.stamp, msg.header.frame_id = to_time(probe.now_ns()), 'map'
    msg.position.x, msg.position.y = 2.2, 2.0
    pub.publish(msg)

    def unsafe():
        return asker.about(y=2.0)[1].reason == VerifyReason.INCIDENT_REGION
    assert probe.spin_until(unsafe, 10.0)


def test_an_incident_recorded_in_the_ledger_is_kept_out_of(probe, start_graph, tmp_path):
    path = tmp_path / 'audit.sqlite'
    ledger = Ledger(path, load_or_create_key(tmp_path / 'audit_key.pem'))
    start_graph(['verifier'], {'verifier': {'ledger_path': str(path), 'ledger_poll': 0.1}})
    asker = Asker(probe)
    assert asker.about(y=6.0)[1].safe
    report = IncidentReport(probe.now_ns(), 'map', 1, 2.4, 6.0, 'box', 0.05, 'operator',
                            'a box fell here')
    ledger.append(RecordKind.INCIDENT, {
        'incident_id': 'operator/1', 'severity': 'NEAR_MISS', 'x': report.x, 'y': report.y,
        'frame_id': 'map', 'object_id': report.object_id, 'distance': report.distance,
        'reporter': report.reporter, 'description': report.description,
        'linked_proposal_ids': [], 'source': 'service'}, report.stamp_ns)
    ledger.commit()
    try:
        assert probe.spin_until(
            lambda: asker.about(y=6.0)[1].reason == VerifyReason.INCIDENT_REGION, 10.0)
    finally:
        ledger.close()


def test_following_governance_nothing_is_safe_before_a_release(probe, start_graph, tmp_path):
    start_graph(['verifier'], {'verifier': {'follow_governance': True,
                                            'ledger_path': str(tmp_path / 'none.sqlite')}})
    answer = Asker(probe).about()[1]
    assert not answer.safe and answer.reason == VerifyReason.MALFORMED
    assert 'no knowledge' in answer.detail and answer.oracle_version == ''
