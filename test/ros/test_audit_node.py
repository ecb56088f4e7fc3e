"""The audit node over real DDS: decisions (with their signals) and incidents reach the ledger; the
report_incident service accepts a good report only once it is committed, and rejects a bad one."""
from __future__ import annotations

import math

import pytest

from alignment_flywheel.msg import GateDecision, Incident
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.keys import load_public_key
from flywheel.audit.ledger import connect
from flywheel.audit.verify import verify_ledger
from flywheel.ros import qos, topics
from flywheel.ros.convert import to_time
from test.audit.conftest import records_in
from test.ros.conftest import wait_matched

pytestmark = pytest.mark.ros


@pytest.fixture
def audit(probe, start_graph, tmp_path):
    ledger = tmp_path / 'audit.sqlite'
    start_graph(['audit'], {'audit': {'ledger_path': str(ledger), 'commit_interval': 0.05}})
    client = probe.node.create_client(ReportIncident, topics.REPORT_INCIDENT)
    assert client.wait_for_service(timeout_sec=30.0), 'audit node never offered its service'
    return ledger, client


def call(probe, client, incident: Incident):
    request = ReportIncident.Request()
    request.incident = incident
    future = client.call_async(request)
    assert probe.spin_until(future.done, 10.0), 'no answer'
    return future.result()


def incident(probe, **changes) -> Incident:
    msg = Incident()
    msg.header.stamp = to_time(probe.now_ns())
    msg.header.frame_id = 'map'
    msg.severity = Incident.SEVERITY_NEAR_MISS
    msg.position.x, msg.position.y = 4.0, 2.4
    msg.object_id, msg.reporter, msg.description = 'shelf_a', 'operator', 'close pass'
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


def test_decisions_are_recorded_with_their_signals_and_incidents_linked(probe, audit):
    ledger, client = audit
    decisions = probe.node.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.STREAM)
    signals = probe.node.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
    wait_matched(probe, decisions)
    wait_matched(probe, signals)
    for i in range(40):      # until both subscriptions have certainly matched on their side too
        s = SignalsMsg(proposal_id=f'proposer/{i}', oracle_version='1.0.0',
                       time_to_collision=math.inf)
        s.header.stamp = to_time(probe.now_ns())
        signals.publish(s)
        probe.spin_for(0.02)
        d = GateDecision(proposal_id=f'proposer/{i}', proposer_id='proposer',
                         action=GateDecision.ACTION_BLOCK,
                         reasons=[GateDecision.REASON_COLLISION_RISK],
                         details=['collision_risk=1.000'], oracle_version='1.0.0')
        d.header.stamp = to_time(probe.now_ns())
        decisions.publish(d)
        probe.spin_for(0.02)
    reply = call(probe, client, incident(probe))
    assert reply.accepted and reply.reason == ''
    assert probe.spin_until(lambda: len(records_in(ledger, kind='decision')) >= 30, 5.0)
    recorded = records_in(ledger, kind='decision')
    late = recorded[-1]
    assert late['action'] == 'BLOCK' and late['reasons'] == ['COLLISION_RISK']
    assert late['signals']['time_to_collision'] == math.inf
    stored = records_in(ledger, kind='incident')
    assert stored[0]['incident_id'] == reply.incident_id and stored[0]['seq'] == reply.ledger_seq
    assert set(reply.linked_proposal_ids) <= {r['proposal_id'] for r in recorded}
    assert len(reply.linked_proposal_ids) >= 20


@pytest.mark.parametrize('changes, field', [
    (dict(severity=7), 'severity'), (dict(reporter=''), 'reporter'),
    (dict(distance=-2.0), 'distance')])
def test_a_malformed_report_is_rejected_with_a_reason(probe, audit, changes, field):
    ledger, client = audit
    reply = call(probe, client, incident(probe, **changes))
    assert not reply.accepted and field in reply.reason
    assert records_in(ledger, kind='incident') == []


def test_incidents_on_the_topic_are_recorded_and_the_ledger_verifies(probe, audit, start_graph):
    ledger, client = audit
    topic = probe.node.create_publisher(Incident, topics.INCIDENTS, qos.STREAM)
    wait_matched(probe, topic)
    for _ in range(50):
        topic.publish(incident(probe, reporter='sim', severity=Incident.SEVERITY_COLLISION))
        if probe.spin_until(lambda: records_in(ledger, kind='incident'), 0.2):
            break
    assert records_in(ledger, kind='incident')[0]['severity'] == 'COLLISION'
    conn = connect(ledger, readonly=True)
    key = load_public_key((ledger.parent / 'audit_key.pem.pub').read_bytes())
    report = verify_ledger(conn, key)
    conn.close()
    assert report.ok, report.summary()
    assert records_in(ledger, kind='lifecycle')[0]['event'] == 'started'
