"""`flywheel audit` and `flywheel incident list` offline, as an auditor runs them."""
import json
import sqlite3

import pytest

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.audit.ledger import Ledger
from flywheel.audit.trail import AuditTrail
from flywheel.cli.main import main
from test.audit.conftest import tamper

S = 1_000_000_000
T0 = 1_795_000_000 * S


@pytest.fixture
def ledger(tmp_path):
    from flywheel.audit.keys import load_or_create_key
    path, key_path = tmp_path / 'audit.sqlite', tmp_path / 'audit_key.pem'
    ledger = Ledger(path, load_or_create_key(key_path))
    trail = AuditTrail(ledger, 'map', 5.0)
    for i in range(20):
        trail.signals(f'proposer/{i}', {
            'proposal_digest': f'{i:064x}', 'oracle_version': '1.0.0', 'overlay_version': '',
            'safety_score': 0.9, 'collision_risk': 0.1, 'constraint_risk': 0.0,
            'min_clearance': float('inf'), 'time_to_collision': float('inf'),
            'prediction_uncertainty': 0.0, 'prediction_uncertainty_threshold': 0.3,
            'coverage_uncertainty': 0.0, 'coverage_uncertainty_threshold': 0.5,
            'evidence_status': 1, 'stamp_ns': T0 + i * S,
            'evidence': [{'rule_id': 'shelf_a', 'kind': 3, 'value': 0.2, 'x': 1.0,
                          'y': float('nan')}]})
        trail.decision({'proposal_id': f'proposer/{i}', 'proposer_id': 'proposer',
                        'proposal_digest': f'{i:064x}', 'action': 'BLOCK' if i % 4 else 'ALLOW',
                        'reasons': ['COLLISION_RISK'] if i % 4 else ['WITHIN_POLICY'],
                        'details': [''], 'oracle_version': '1.0.0',
                        'policy_version': 'policy-1.0.0',
                        'command': None if i % 4 else [0.5, 0.0], 'latency_s': 0.004},
                       T0 + i * S)
    trail.release({'event': 'installed', 'oracle_version': '1.0.0', 'previous_version': '',
                   'bundle_sha256': 'ab' * 32, 'reason': '', 'actor': 'operator'}, T0)
    trail.incident(IncidentReport(T0 + 10 * S, 'map', Severity.NEAR_MISS, 4.0, 2.4, 'shelf_a',
                                  0.05, 'sim', 'close pass'), T0 + 10 * S, 'topic')
    ledger.close()
    return path, key_path.with_name('audit_key.pem.pub')


def test_verify_an_honest_ledger(ledger, capsys):
    path, pub = ledger
    assert main(['audit', 'verify', str(path), '--key', str(pub)]) == 0
    assert 'OK: 22 records' in capsys.readouterr().out


def test_verify_without_a_key_says_what_it_proves(ledger, capsys):
    assert main(['audit', 'verify', str(ledger[0])]) == 0
    assert 'integrity but not who wrote it' in capsys.readouterr().out


def test_verify_names_the_first_bad_record(ledger, capsys):
    path, pub = ledger
    tamper(path, "UPDATE records SET body = replace(body, 'BLOCK', 'ALLOW') WHERE seq = 6")
    assert main(['audit', 'verify', str(path), '--key', str(pub)]) == 1
    assert 'TAMPERED: first bad record 6' in capsys.readouterr().out


def test_verify_a_missing_ledger_is_a_usage_error(tmp_path, capsys):
    assert main(['audit', 'verify', str(tmp_path / 'nope.sqlite')]) == 2
    assert 'no such ledger' in capsys.readouterr().err


def test_query_filters_and_prints_json(ledger, capsys):
    assert main(['audit', 'query', str(ledger[0]), '--action', 'ALLOW', '--json']) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r['proposal_id'] for r in rows] == [f'proposer/{i}' for i in (0, 4, 8, 12, 16)]


def test_query_by_time(ledger, capsys):
    since = '2026-11-18T11:06:45+00:00'          # T0 + 5 s
    assert main(['audit', 'query', str(ledger[0]), '--kind', 'decision', '--since', since,
                 '--limit', '2']) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and 'proposer/5' in out[0]


def test_bad_time_is_a_usage_error(ledger, capsys):
    assert main(['audit', 'query', str(ledger[0]), '--since', 'yesterday']) == 2


def test_incident_list(ledger, capsys):
    assert main(['incident', 'list', str(ledger[0])]) == 0
    out = capsys.readouterr().out
    assert 'NEAR_MISS' in out and 'close pass' in out and '[6 decisions linked]' in out


def test_export_writes_an_mcap_that_decodes_as_ros2_messages(ledger, tmp_path, capsys):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    path, pub = ledger
    out = tmp_path / 'flight.mcap'
    assert main(['audit', 'export', str(path), '--mcap', str(out), '--key', str(pub)]) == 0
    with open(out, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = [(channel.topic, msg) for _, channel, _, msg in reader.iter_decoded_messages()]
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    topics = [t for t, _ in decoded]
    assert topics.count('/gate_decisions') == 20 and topics.count('/safety_signals') == 20
    assert topics.count('/incidents') == 1 and topics.count('/release_events') == 1
    blocked = next(m for t, m in decoded
                   if t == '/gate_decisions' and m.proposal_id == 'proposer/1')
    assert blocked.action == 3 and list(blocked.reasons) == [1] and not blocked.command_published
    signals = next(m for t, m in decoded if t == '/safety_signals')
    assert signals.min_clearance == float('inf') and signals.evidence[0].rule_id == 'shelf_a'
    incident = next(m for t, m in decoded if t == '/incidents')
    assert incident.severity == 1 and len(incident.linked_proposal_ids) == 6
    assert metadata['oracle_releases'] == {'1.0.0': 'ab' * 32}
    assert metadata['ledger']['verified'] == 'ok'


def test_the_ledger_file_is_append_only_for_sqlite_users_too(ledger):
    conn = sqlite3.connect(ledger[0])
    with pytest.raises(sqlite3.DatabaseError, match='append-only'):
        conn.execute('DELETE FROM records')
    conn.close()
