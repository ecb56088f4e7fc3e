"""The audit node over real DDS: decisions are recorded with the verdict they embed; the numbered
streams (decisions, governance events) are heard transient-local, so what was published before the
audit started, or while it was dead (kill -9), is recorded once, and what its publisher's history
no longer holds is a GAP; incidents reach the ledger, and report_incident accepts a good report only
once it is committed and rejects a bad one with a reason."""
from __future__ import annotations

import math
import os
import signal

import pytest
from rclpy.qos import QoSProfile

from alignment_flywheel.msg import Evidence, GateDecision, GovernanceEvent, Incident
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.governance_event import GovernanceEventKind
from flywheel.audit.keys import load_public_key
from flywheel.audit.ledger import connect
from flywheel.audit.sequence import check_completeness
from flywheel.audit.verify import verify_ledger
from flywheel.errors import LedgerError
from flywheel.ros import qos, topics
from flywheel.ros.convert import from_time, to_time
from test.audit.conftest import records_in

pytestmark = pytest.mark.ros

EPOCH = 1_795_000_000_000_000_000
DEADLINE = 30.0          # s: for a node process to start and its records to be committed


def rows(ledger, **filters) -> list[dict]:
    """The committed records an auditor sees now ([] until the audit has created the ledger)."""
    try:
        return records_in(ledger, **filters)
    except LedgerError:
        return []


def stream_seqs(ledger, kind='decision') -> list[int]:
    return [r['stream']['seq'] for r in rows(ledger, kind=kind)]


def start_audit(start_graph, ledger):
    return start_graph(['audit'], {'audit': {'ledger_path': str(ledger),
                                             'commit_interval': 0.05}})


def kill_9(graph) -> None:
    process = graph.processes['audit']
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def verdict(probe, seq: int, collision_risk: float = 0.1) -> SignalsMsg:
    s = SignalsMsg(proposal_id=f'proposer/{seq}', proposal_digest=f'{seq:064x}',
                   oracle_version='1.0.0', epoch=EPOCH + 7, seq=seq,
                   safety_score=1.0 - collision_risk, collision_risk=collision_risk,
                   min_clearance=math.inf, time_to_collision=math.inf, scored_hold=0.5,
                   anchor_tolerance=0.2, anchor_yaw_tolerance=0.3, key_id='oracle-1',
                   signature=list(range(64)), evidence_status=SignalsMsg.EVIDENCE_COMPLETE)
    s.header.stamp = to_time(probe.now_ns())
    s.header.frame_id = 'map'
    return s


def decision(probe, seq: int, epoch: int = EPOCH, subject=GateDecision.SUBJECT_PROPOSAL,
             blocked: bool = False) -> GateDecision:
    d = GateDecision(subject=subject, epoch=epoch, seq=seq, proposal_id=f'proposer/{seq}',
                     proposer_id='proposer', proposal_digest=f'{seq:064x}',
                     action=GateDecision.ACTION_BLOCK if blocked else GateDecision.ACTION_ALLOW,
                     reasons=[GateDecision.REASON_COLLISION_RISK if blocked
                              else GateDecision.REASON_WITHIN_POLICY],
                     details=['collision_risk=1.000' if blocked else ''], oracle_version='1.0.0',
                     command_published=not blocked,
                     signals=[verdict(probe, seq, 1.0 if blocked else 0.1)])
    d.header.stamp = to_time(probe.now_ns())
    return d


def test_the_event_kinds_mirror_the_message_constants():
    constants = {name[len('EVENT_'):]: getattr(GovernanceEvent, name)
                 for name in dir(GovernanceEvent) if name.startswith('EVENT_')}
    assert constants == {kind.name: kind.value for kind in GovernanceEventKind}


def test_a_record_keeps_every_field_of_the_decision_and_its_verdict(probe, tmp_path):
    """Message -> record -> MCAP message: nothing is lost on the way (no process)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from flywheel.audit.keys import load_or_create_key
    from flywheel.audit.ledger import Ledger
    from flywheel.audit.mcap_export import export_mcap
    from flywheel.audit.trail import AuditTrail
    from flywheel.ros.records import decision_record, position

    sent = decision(probe, 3, blocked=True)
    sent.signals[0].evidence = [Evidence(rule_id='obstacle:shelf_a', kind=Evidence.KIND_COLLISION,
                                         value=0.25)]
    sent.signals[0].evidence[0].location.x, sent.signals[0].evidence[0].location.y = 1.5, -2.0
    sent.signals[0].evaluation_duration.nanosec = 1_500_000
    sent.latency.nanosec = 4_000_000
    ledger = Ledger(tmp_path / 'l.sqlite', load_or_create_key(tmp_path / 'k.pem'))
    trail = AuditTrail(ledger, 'map', 5.0)
    trail.decision(position('/gate_decisions', sent), decision_record(sent),
                   from_time(sent.header.stamp))
    ledger.commit()
    verification = verify_ledger(ledger.connection, load_public_key(
        (tmp_path / 'k.pem.pub').read_bytes()))
    export_mcap(ledger.connection, tmp_path / 'out.mcap', verification)
    ledger.close()
    with open(tmp_path / 'out.mcap', 'rb') as stream:
        (_, _, _, got), = make_reader(stream, decoder_factories=[DecoderFactory()]
                                      ).iter_decoded_messages(topics=['/gate_decisions'])
    assert same(sent, got)


def same(sent, got, path='') -> bool:
    """Every field of a generated message equals the decoded MCAP message's."""
    for name in sent.get_fields_and_field_types():
        a, b = getattr(sent, name), getattr(got, name)
        if hasattr(a, 'get_fields_and_field_types'):
            assert same(a, b, f'{path}{name}.')
        elif isinstance(a, (list, tuple)) and a and hasattr(a[0], 'get_fields_and_field_types'):
            assert len(a) == len(b), f'{path}{name}'
            assert all(same(x, y, f'{path}{name}[].') for x, y in zip(a, b))
        elif not isinstance(a, (str, int, float, bool)):
            assert list(a) == list(b), f'{path}{name}: {list(a)} != {list(b)}'
        else:
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), (
                f'{path}{name}: {a!r} != {b!r}')
    return True


@pytest.fixture
def audit(probe, start_graph, tmp_path):
    ledger = tmp_path / 'audit.sqlite'
    start_audit(start_graph, ledger)
    client = probe.node.create_client(ReportIncident, '/audit/report_incident')
    assert client.wait_for_service(timeout_sec=DEADLINE), 'audit node never offered its service'
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


def test_every_decision_is_recorded_with_the_verdict_it_embeds(probe, audit):
    ledger, client = audit
    decisions = probe.node.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    for seq in range(1, 301):                 # a collision BLOCK every fifth
        decisions.publish(decision(probe, seq, blocked=seq % 5 == 0))
    assert probe.spin_until(lambda: len(rows(ledger, kind='decision')) >= 300, DEADLINE)
    recorded = rows(ledger, kind='decision')
    assert [r['stream']['seq'] for r in recorded] == list(range(1, 301))
    assert all(r['signals'] for r in recorded)                      # 100 %
    blocked = [r for r in recorded if r['action'] == 'BLOCK']
    assert len(blocked) == 60 and all(r['signals']['collision_risk'] == 1.0 for r in blocked)
    s = recorded[41]['signals']
    assert (s['epoch'], s['seq'], s['key_id']) == (EPOCH + 7, 42, 'oracle-1')
    assert s['signature'] == bytes(range(64)).hex() and s['time_to_collision'] == math.inf
    assert (s['scored_hold'], s['anchor_tolerance'], s['anchor_yaw_tolerance']) == (0.5, 0.2, 0.3)
    reply = call(probe, client, incident(probe))
    assert reply.accepted and reply.reason == ''
    stored = rows(ledger, kind='incident')
    assert stored[0]['incident_id'] == reply.incident_id and stored[0]['seq'] == reply.ledger_seq
    assert set(reply.linked_proposal_ids) <= {r['proposal_id'] for r in recorded}
    assert len(reply.linked_proposal_ids) >= 100


def test_an_ignored_verdict_and_a_gap_are_recorded_as_such(probe, audit):
    ledger, _ = audit
    decisions = probe.node.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    for seq in (1, 2, 2, 6):                  # 2 delivered twice; 3..5 never sent
        decisions.publish(decision(probe, seq))
    decisions.publish(decision(probe, 7, subject=GateDecision.SUBJECT_VERDICT))
    assert probe.spin_until(lambda: rows(ledger, kind='ignored_verdict'), DEADLINE)
    assert stream_seqs(ledger) == [1, 2, 6]
    gap, = rows(ledger, kind='gap')
    assert (gap['stream']['name'], gap['first'], gap['last']) == ('/gate_decisions', 3, 5)


@pytest.mark.parametrize('changes, field', [
    (dict(severity=7), 'severity'), (dict(reporter=''), 'reporter'),
    (dict(distance=-2.0), 'distance')])
def test_a_malformed_report_is_rejected_with_a_reason(probe, audit, changes, field):
    ledger, client = audit
    reply = call(probe, client, incident(probe, **changes))
    assert not reply.accepted and field in reply.reason
    assert rows(ledger, kind='incident') == []


def test_incidents_on_the_topic_are_recorded_and_the_ledger_verifies(probe, audit):
    ledger, client = audit
    topic = probe.node.create_publisher(Incident, topics.INCIDENTS, qos.STREAM)
    for _ in range(50):     # incidents are a volatile stream: repeat until one is recorded
        topic.publish(incident(probe, reporter='sim', severity=Incident.SEVERITY_COLLISION))
        if probe.spin_until(lambda: rows(ledger, kind='incident'), 0.2):
            break
    assert rows(ledger, kind='incident')[0]['severity'] == 'COLLISION'
    conn = connect(ledger, readonly=True)
    key = load_public_key((ledger.parent / 'audit_key.pem.pub').read_bytes())
    report = verify_ledger(conn, key)
    conn.close()
    assert report.ok, report.summary()
    assert rows(ledger, kind='lifecycle')[0]['event'] == 'started'


def test_transitions_published_before_the_audit_starts_are_recorded(probe, start_graph,
                                                                    tmp_path):
    events = probe.node.create_publisher(GovernanceEvent, topics.GOVERNANCE_EVENTS, qos.RECORDS)
    for seq, reason in enumerate(['configure: unconfigured -> inactive',
                                  'activate: inactive -> active'], start=1):
        msg = GovernanceEvent(event=GovernanceEvent.EVENT_TRANSITION, epoch=EPOCH, seq=seq,
                              reason=reason, actor='governance')
        msg.header.stamp = to_time(probe.now_ns())
        events.publish(msg)
    ledger = tmp_path / 'audit.sqlite'
    start_audit(start_graph, ledger)           # only now: it has never matched the publisher

    def transitions():
        return [(r['transition'], r['start'], r['goal']) for r in rows(ledger, kind='lifecycle')
                if r['event'] == 'transition']
    assert probe.spin_until(lambda: len(transitions()) == 2, DEADLINE), transitions()
    assert transitions() == [('configure', 'unconfigured', 'inactive'),
                             ('activate', 'inactive', 'active')]
    assert rows(ledger, kind='gap') == []


def completeness(ledger):
    conn = connect(ledger, readonly=True)
    try:
        return check_completeness(conn)
    finally:
        conn.close()


def test_a_restarted_audit_records_the_history_once(probe, start_graph, tmp_path):
    ledger = tmp_path / 'audit.sqlite'
    decisions = probe.node.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    graph = start_audit(start_graph, ledger)
    for seq in range(1, 201):
        decisions.publish(decision(probe, seq))
    assert probe.spin_until(lambda: len(rows(ledger, kind='decision')) >= 100, DEADLINE)
    for seq in range(201, 251):               # the stream flows on while the audit dies
        decisions.publish(decision(probe, seq))
    kill_9(graph)
    for seq in range(251, 301):
        decisions.publish(decision(probe, seq))
    before = stream_seqs(ledger)
    assert before == list(range(1, len(before) + 1))   # committed: a prefix, chain unbroken

    start_audit(start_graph, ledger)
    assert probe.spin_until(lambda: 300 in stream_seqs(ledger), DEADLINE)
    for seq in range(301, 311):
        decisions.publish(decision(probe, seq))
    assert probe.spin_until(lambda: 310 in stream_seqs(ledger), DEADLINE)
    assert stream_seqs(ledger) == list(range(1, 311))  # each once, none lost
    assert rows(ledger, kind='gap') == []
    assert completeness(ledger).complete


def test_a_restarted_audit_records_a_gap_only_for_what_the_history_lost(probe, start_graph,
                                                                       tmp_path):
    ledger = tmp_path / 'audit.sqlite'
    depth = 20                                # this publisher keeps a short history
    decisions = probe.node.create_publisher(
        GateDecision, topics.GATE_DECISIONS,
        QoSProfile(history=qos.RECORDS.history, depth=depth,
                   reliability=qos.RECORDS.reliability, durability=qos.RECORDS.durability))
    graph = start_audit(start_graph, ledger)
    for first in range(1, 51, 10):            # never more than the history holds unrecorded
        for seq in range(first, first + 10):
            decisions.publish(decision(probe, seq))
        assert probe.spin_until(lambda: first + 9 in stream_seqs(ledger), DEADLINE)
    assert stream_seqs(ledger) == list(range(1, 51))
    kill_9(graph)
    for seq in range(51, 151):                # the history keeps 131..150 of these
        decisions.publish(decision(probe, seq))

    start_audit(start_graph, ledger)
    assert probe.spin_until(lambda: 150 in stream_seqs(ledger), DEADLINE)
    for seq in range(151, 156):
        decisions.publish(decision(probe, seq))
    assert probe.spin_until(lambda: 155 in stream_seqs(ledger), DEADLINE)
    assert stream_seqs(ledger) == list(range(1, 51)) + list(range(151 - depth, 156))
    gap, = rows(ledger, kind='gap')
    assert (gap['stream']['epoch'], gap['first'], gap['last']) == (EPOCH, 51, 150 - depth)
    result = completeness(ledger)
    assert not result.complete and result.missing == 100 - depth
    assert result.streams[0].unrecorded == ()            # the gap is on the record


def set_parameter(probe, node: str, name: str, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = probe.node.create_client(SetParameters, f'/{node}/set_parameters')
    assert client.wait_for_service(timeout_sec=DEADLINE)
    future = client.call_async(SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg()]))
    assert probe.spin_until(future.done, 10.0)
    return future.result().results[0]


def test_parameter_changes_are_validated_honoured_and_recorded(probe, audit):
    """A read-only safety limit is refused with a reason; a live change that fails the config's
    own checks is refused with that reason; a valid one takes effect and is on the record."""
    ledger, _ = audit
    refused = set_parameter(probe, 'audit', 'commit_interval', 5.0)
    assert not refused.successful and 'read-only' in refused.reason
    invalid = set_parameter(probe, 'audit', 'link_window', -1.0)
    assert not invalid.successful and 'link_window' in invalid.reason
    done = set_parameter(probe, 'audit', 'link_window', 0.5)
    assert done.successful
    assert probe.spin_until(lambda: [r for r in rows(ledger, kind='parameter')
                                     if r['changed'] == {'link_window': 0.5}], DEADLINE)
