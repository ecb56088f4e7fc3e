"""What the audit node does with what it hears: decisions joined with their signals, incidents
validated, linked and committed before they are acknowledged."""
import math

import pytest

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.audit.ledger import Ledger
from flywheel.audit.trail import AuditTrail
from flywheel.errors import IncidentError
from test.audit.conftest import records_in

S = 1_000_000_000


@pytest.fixture
def trail(ledger_path, key):
    ledger = Ledger(ledger_path, key, commit_interval=60.0)
    yield AuditTrail(ledger, 'map', link_window_s=5.0)
    ledger.close()


def decision(pid, action='ALLOW'):
    return {'proposal_id': pid, 'proposer_id': 'proposer', 'action': action,
            'oracle_version': '1.0.0', 'reasons': []}


def incident(**changes):
    fields = dict(stamp_ns=10 * S, frame_id='map', severity=Severity.COLLISION, x=4.0, y=2.3,
                  object_id='shelf_a', distance=0.0, reporter='sim', description='hit')
    return IncidentReport(**{**fields, **changes})


def test_a_decision_carries_the_signals_it_was_decided_on(trail, ledger_path):
    trail.signals('proposer/1', {'collision_risk': 0.2, 'time_to_collision': math.inf})
    trail.decision(decision('proposer/1'), 10 * S)
    trail.decision(decision('proposer/2'), 11 * S)          # no signals: recorded as such
    trail.ledger.commit()
    first, second = records_in(ledger_path, kind='decision')
    assert first['signals'] == {'collision_risk': 0.2, 'time_to_collision': math.inf}
    assert second['signals'] is None


def test_an_incident_is_linked_to_the_decisions_before_it_and_committed_at_once(trail,
                                                                                ledger_path):
    for i, t in enumerate([1, 6, 8, 10, 12]):
        trail.decision(decision(f'proposer/{i}'), t * S)
    seq, incident_id, linked = trail.incident(incident(), now_ns=10 * S, source='topic')
    assert linked == ('proposer/1', 'proposer/2', 'proposer/3')   # 5..10 s
    stored = records_in(ledger_path, kind='incident')               # visible without another commit
    assert stored[0]['seq'] == seq and stored[0]['linked_proposal_ids'] == list(linked)
    assert stored[0]['incident_id'] == incident_id and stored[0]['severity'] == 'COLLISION'



def test_a_late_report_links_the_decisions_of_its_own_time(trail):
    for i in range(100):
        trail.decision(decision(f'proposer/{i}'), i * S)
    _, _, linked = trail.incident(incident(stamp_ns=20 * S), now_ns=99 * S, source='service')
    assert linked == tuple(f'proposer/{i}' for i in range(15, 21))

def test_explicit_links_are_kept(trail):
    _, _, linked = trail.incident(incident(linked_proposal_ids=('proposer/77',)),
                                  10 * S, 'service')
    assert linked == ('proposer/77',)


@pytest.mark.parametrize('changes, field', [
    (dict(severity=9), 'severity'), (dict(x=math.nan), 'position'),
    (dict(distance=-1.0), 'distance'), (dict(frame_id='odom'), 'frame_id'),
    (dict(reporter='  '), 'reporter'), (dict(description='x' * 5000), 'description'),
    (dict(stamp_ns=0), 'stamp'), (dict(stamp_ns=20 * S), 'stamp')])
def test_malformed_incidents_are_rejected_and_not_recorded(trail, ledger_path, changes, field):
    with pytest.raises(IncidentError, match=field):
        trail.incident(incident(**changes), now_ns=10 * S, source='service')
    trail.ledger.commit()
    assert records_in(ledger_path, kind='incident') == []


def test_queries_filter_by_action_release_proposer_and_time(trail, ledger_path):
    trail.decision(decision('proposer/1', 'ALLOW'), 1 * S)
    trail.decision(decision('proposer/2', 'BLOCK'), 2 * S)
    trail.decision({**decision('proposer/3', 'BLOCK'), 'oracle_version': '1.1.0'}, 3 * S)
    trail.decision({**decision('proposer/4'), 'proposer_id': 'nav2'}, 4 * S)
    trail.ledger.commit()
    ids = lambda rows: [r['proposal_id'] for r in rows]  # noqa: E731
    assert ids(records_in(ledger_path, action='BLOCK')) == ['proposer/2', 'proposer/3']
    assert ids(records_in(ledger_path, release='1.1.0')) == ['proposer/3']
    assert ids(records_in(ledger_path, proposer='nav2')) == ['proposer/4']
    between = records_in(ledger_path, since_ns=2 * S, until_ns=3 * S)
    assert ids(between) == ['proposer/2', 'proposer/3']
    assert ids(records_in(ledger_path, kind='decision', limit=1)) == ['proposer/1']
