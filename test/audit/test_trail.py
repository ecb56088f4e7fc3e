"""What the audit node does with what it hears: decisions recorded with the verdict they embed,
each stream record once with its gaps on the record, a restart continuing where the committed
records stop; incidents validated, linked and committed before they are acknowledged."""
import math

import pytest

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.audit.ledger import Ledger, connect
from flywheel.audit.sequence import StreamPosition, Streams
from flywheel.audit.trail import AuditTrail
from flywheel.errors import IncidentError
from test.audit.conftest import (EPOCH, GATE, decision_body, governance_body, records_in,
                                 verdict_body)

S = 1_000_000_000
GOVERNANCE = '/governance/events'


@pytest.fixture
def trail(ledger_path, key):
    ledger = Ledger(ledger_path, key, commit_interval=60.0)
    yield AuditTrail(ledger, 'map', link_window_s=5.0)
    ledger.close()


class Gate:
    """Numbers its decisions as the Gate does: one epoch, seq 1, 2, 3, ..."""

    def __init__(self, trail, epoch=EPOCH):
        self.trail, self.epoch, self.seq = trail, epoch, 0

    def decide(self, pid, stamp_ns, action='ALLOW', signals=None, subject='PROPOSAL', seq=None):
        self.seq = seq if seq is not None else self.seq + 1
        return self.trail.decision(StreamPosition(GATE, self.epoch, self.seq),
                                   decision_body(pid, action, signals, subject), stamp_ns)


def decide(trail, pid, stamp_ns, action='ALLOW'):
    """A decision from a Gate that numbers by the proposal's index (tests of linking)."""
    seq = int(pid.rsplit('/', 1)[1]) + 1
    return Gate(trail).decide(pid, stamp_ns, action, verdict_body(pid, seq), seq=seq)


def stream_seqs(rows):
    return [r['stream']['seq'] for r in rows]


def test_every_decision_that_applied_a_verdict_is_recorded_with_all_of_it(trail, ledger_path):
    gate = Gate(trail)
    sent = {}
    for i in range(300):
        pid = f'proposer/{i}'
        if i % 7 == 3:                  # no verdict applied (NO_VERDICT, STALE_PROPOSAL, ...)
            gate.decide(pid, i * S, 'FALLBACK')
            continue
        blocked = i % 5 == 0            # collision BLOCKs among them
        sent[pid] = verdict_body(pid, i + 1, collision_risk=1.0 if blocked else 0.1)
        gate.decide(pid, i * S, 'BLOCK' if blocked else 'ALLOW', sent[pid])
    trail.ledger.commit()
    recorded = records_in(ledger_path, kind='decision')
    assert len(recorded) == 300
    applied = [r for r in recorded if r['oracle_version']]
    assert len(applied) == len(sent) and all(r['signals'] for r in applied)   # 100 %
    for r in applied:
        signals = r['signals']
        expected = sent[r['proposal_id']]
        evidence = signals.pop('evidence')
        assert math.isnan(evidence[0].pop('y'))       # NaN: no location, and NaN != NaN
        assert evidence == [{k: v for k, v in e.items() if k != 'y'} for e in expected['evidence']]
        assert signals == {k: v for k, v in expected.items() if k != 'evidence'}
        assert signals['signature'] == 'ab' * 64 and signals['key_id'] == 'oracle-1'
        assert (signals['epoch'], signals['seq']) == (EPOCH + 7, int(r['proposal_id'][9:]) + 1)
        assert (signals['scored_hold'], signals['anchor_tolerance'],
                signals['anchor_yaw_tolerance']) == (0.5, 0.2, 0.3)
    assert {r['subject'] for r in recorded} == {'PROPOSAL'}
    assert stream_seqs(recorded) == list(range(1, 301))
    assert {r['stream']['name'] for r in recorded} == {GATE}


def test_an_ignored_verdict_is_its_own_kind_and_never_linked_to_an_incident(trail, ledger_path):
    gate = Gate(trail)
    gate.decide('proposer/1', 9 * S, 'ALLOW', verdict_body('proposer/1', 1))
    gate.decide('proposer/666', 9 * S, 'BLOCK', verdict_body('proposer/666', 2, key_id='forger'),
                subject='VERDICT')
    _, _, linked = trail.incident(incident(), now_ns=10 * S, source='topic')
    assert linked == ('proposer/1',)
    ignored = records_in(ledger_path, kind='ignored_verdict')
    assert [r['proposal_id'] for r in ignored] == ['proposer/666']
    assert ignored[0]['signals']['key_id'] == 'forger' and ignored[0]['stream']['seq'] == 2
    assert [r['proposal_id'] for r in records_in(ledger_path, kind='decision')] == ['proposer/1']


def test_a_duplicate_epoch_and_seq_is_recorded_once(trail, ledger_path):
    gate = Gate(trail)
    for seq in (1, 2, 3, 4, 5, 3, 4, 5, 6, 7):     # history re-delivered, then the live stream
        receipt = gate.decide(f'proposer/{seq}', seq * S, seq=seq)
    assert receipt.seq is not None and trail.duplicates == 3
    trail.ledger.commit()
    assert stream_seqs(records_in(ledger_path, kind='decision')) == [1, 2, 3, 4, 5, 6, 7]
    assert records_in(ledger_path, kind='gap') == []


def test_a_gap_is_recorded_before_the_record_that_reveals_it(trail, ledger_path):
    gate = Gate(trail)
    for seq in (1, 2, 6):
        receipt = gate.decide(f'proposer/{seq}', seq * S, seq=seq)
    assert receipt.gap is not None and (receipt.gap.first, receipt.gap.last) == (3, 5)
    assert receipt.gap_seq == receipt.seq - 1
    trail.ledger.commit()
    rows = records_in(ledger_path)
    assert [r['kind'] for r in rows] == ['decision', 'decision', 'gap', 'decision']
    gap = rows[2]
    assert gap['stream'] == {'name': GATE, 'epoch': EPOCH}
    assert (gap['first'], gap['last'], gap['count']) == (3, 5, 3)
    assert gap['stamp_ns'] == 6 * S                  # when it became known


def test_a_new_epoch_that_starts_late_records_its_missed_start(trail, ledger_path):
    old, new = Gate(trail), Gate(trail, EPOCH + 60 * S)
    for seq in (1, 2):
        old.decide(f'proposer/{seq}', seq * S)
    new.decide('proposer/x', 3 * S, seq=4)            # the new Gate's 1..3 never arrived
    old.decide('proposer/3', 4 * S)                   # the old one's sequence goes on
    trail.ledger.commit()
    gaps = records_in(ledger_path, kind='gap')
    assert [(g['stream']['epoch'], g['first'], g['last']) for g in gaps] == [
        (EPOCH + 60 * S, 1, 3)]


def test_a_restarted_trail_records_what_was_lost_uncommitted_and_nothing_twice(ledger_path,
                                                                                 key):
    ledger = Ledger(ledger_path, key, commit_interval=60.0)
    trail = AuditTrail(ledger, 'map', 5.0)
    trail.start(0, node='/audit')
    gate = Gate(trail)
    for seq in range(1, 11):
        gate.decide(f'proposer/{seq}', seq * S)
    ledger.commit()
    for seq in range(11, 14):                         # appended, never committed: a kill -9
        gate.decide(f'proposer/{seq}', seq * S)
    ledger.connection.close()
    ledger = Ledger(ledger_path, key, commit_interval=60.0)
    trail = AuditTrail(ledger, 'map', 5.0)
    assert trail.streams.position(GATE, EPOCH) == (10, ())
    trail.start(20 * S, node='/audit')
    gate = Gate(trail)
    for seq in range(1, 16):                          # the publisher's history, then more
        gate.decide(f'proposer/{seq}', seq * S, seq=seq)
    assert trail.duplicates == 10
    trail.stop(30 * S)
    assert stream_seqs(records_in(ledger_path, kind='decision')) == list(range(1, 16))
    assert records_in(ledger_path, kind='gap') == []
    assert [r['event'] for r in records_in(ledger_path, kind='lifecycle')] == [
        'started', 'started', 'stopped']


def test_restoring_from_the_newest_snapshot_equals_replaying_everything(ledger_path, key):
    ledger = Ledger(ledger_path, key, commit_interval=60.0)
    trail = AuditTrail(ledger, 'map', 5.0, snapshot_every=4)
    gates = [Gate(trail), Gate(trail, EPOCH + S)]
    for seq in (1, 2, 5, 3, 9, 9, 10, 14, 15, 12, 16, 17, 20):
        for gate in gates:
            gate.decide(f'proposer/{seq}', seq * S, seq=seq)
    ledger.commit()
    assert len(records_in(ledger_path, kind='streams')) >= 5
    everything = Streams()
    for row in records_in(ledger_path):
        everything.replay(row['kind'], row)
    conn = connect(ledger_path, readonly=True)
    restored = Streams.from_ledger(conn)
    conn.close()
    assert restored.snapshot() == everything.snapshot() == trail.streams.snapshot()
    assert trail.streams.position(GATE, EPOCH) == (20, ((4, 4), (6, 8), (11, 11), (13, 13),
                                                        (18, 19)))
    ledger.close()


def test_governance_events_are_one_stream_whose_transitions_are_lifecycle_records(trail,
                                                                                  ledger_path):
    def event(seq, body):
        return trail.governance(StreamPosition(GOVERNANCE, EPOCH, seq), body, seq * S)
    event(1, governance_body('transition', 'configure: unconfigured -> inactive'))
    event(2, governance_body('transition', 'activate: inactive -> active'))
    event(3, governance_body('installed', oracle_version='1.0.0', number=1,
                             bundle_sha256='ab' * 32))
    event(5, governance_body('swap_timeout', 'no confirmation within 2.0 s'))
    event(6, governance_body('transition', 'a reason of another form'))
    trail.ledger.commit()
    transitions = records_in(ledger_path, kind='lifecycle')
    assert [(t['transition'], t['start'], t['goal']) for t in transitions[:2]] == [
        ('configure', 'unconfigured', 'inactive'), ('activate', 'inactive', 'active')]
    assert 'start' not in transitions[2] and transitions[2]['reason'] == 'a reason of another form'
    assert [r['event'] for r in records_in(ledger_path, kind='release')] == [
        'installed', 'swap_timeout']
    gap, = records_in(ledger_path, kind='gap')
    assert gap['stream'] == {'name': GOVERNANCE, 'epoch': EPOCH} and gap['first'] == 4


def incident(**changes):
    fields = dict(stamp_ns=10 * S, frame_id='map', severity=Severity.COLLISION, x=4.0, y=2.3,
                  object_id='shelf_a', distance=0.0, reporter='sim', description='hit')
    return IncidentReport(**{**fields, **changes})


def test_an_incident_is_linked_to_the_decisions_before_it_and_committed_at_once(trail,
                                                                                ledger_path):
    for i, t in enumerate([1, 6, 8, 10, 12]):
        decide(trail, f'proposer/{i}', t * S)
    seq, incident_id, linked = trail.incident(incident(), now_ns=10 * S, source='topic')
    assert linked == ('proposer/1', 'proposer/2', 'proposer/3')   # 5..10 s
    stored = records_in(ledger_path, kind='incident')               # visible without another commit
    assert stored[0]['seq'] == seq and stored[0]['linked_proposal_ids'] == list(linked)
    assert stored[0]['incident_id'] == incident_id and stored[0]['severity'] == 'COLLISION'



def test_a_late_report_links_the_decisions_of_its_own_time(trail):
    for i in range(100):
        decide(trail, f'proposer/{i}', i * S)
    _, _, linked = trail.incident(incident(stamp_ns=20 * S), now_ns=99 * S, source='service')
    assert linked == tuple(f'proposer/{i}' for i in range(15, 21))

def test_explicit_links_are_kept(trail):
    _, _, linked = trail.incident(incident(linked_proposal_ids=('proposer/77',)),
                                  10 * S, 'service')
    assert linked == ('proposer/77',)


@pytest.mark.parametrize('changes, field', [
    (dict(severity=9), 'severity'), (dict(x=math.nan), 'position'),
    (dict(distance=-1.0), 'distance'), (dict(frame_id='odom'), 'frame_id'),
    (dict(reporter='  '), 'reporter'), (dict(description='x' * 4097), 'description'),
    (dict(reporter='r' * 129), 'reporter'), (dict(object_id='o' * 129), 'object_id'),
    (dict(linked_proposal_ids=('p' * 65,)), 'linked_proposal_ids'),
    (dict(linked_proposal_ids=('p',) * 1001), 'linked_proposal_ids'),
    (dict(stamp_ns=0), 'stamp'), (dict(stamp_ns=20 * S), 'stamp')])
def test_malformed_incidents_are_rejected_and_not_recorded(trail, ledger_path, changes, field):
    with pytest.raises(IncidentError, match=field):
        trail.incident(incident(**changes), now_ns=10 * S, source='service')
    trail.ledger.commit()
    assert records_in(ledger_path, kind='incident') == []


def test_queries_filter_by_action_release_proposer_and_time(trail, ledger_path):
    gate = Gate(trail)
    gate.decide('proposer/1', 1 * S, 'ALLOW', verdict_body('proposer/1', 1))
    gate.decide('proposer/2', 2 * S, 'BLOCK', verdict_body('proposer/2', 2))
    gate.decide('proposer/3', 3 * S, 'BLOCK', verdict_body('proposer/3', 3, oracle_version='1.1.0'))
    gate.seq += 1
    trail.decision(StreamPosition(GATE, EPOCH, gate.seq),
                   decision_body('proposer/4', signals=verdict_body('proposer/4', 4),
                                 proposer_id='nav2'), 4 * S)
    trail.ledger.commit()
    ids = lambda rows: [r['proposal_id'] for r in rows]  # noqa: E731
    assert ids(records_in(ledger_path, action='BLOCK')) == ['proposer/2', 'proposer/3']
    assert ids(records_in(ledger_path, release='1.1.0')) == ['proposer/3']
    assert ids(records_in(ledger_path, proposer='nav2')) == ['proposer/4']
    between = records_in(ledger_path, since_ns=2 * S, until_ns=3 * S)
    assert ids(between) == ['proposer/2', 'proposer/3']
    assert ids(records_in(ledger_path, kind='decision', limit=1)) == ['proposer/1']
