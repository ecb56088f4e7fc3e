"""`flywheel audit` and `flywheel incident list` offline, as an auditor runs them."""
import json
import math
import sqlite3

import pytest

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.audit.ledger import Ledger
from flywheel.audit.sequence import StreamPosition
from flywheel.audit.trail import AuditTrail
from flywheel.cli.main import main
from test.audit.conftest import (EPOCH, GATE, decision_body, governance_body, tamper,
                                 verdict_body)

S = 1_000_000_000
T0 = 1_795_000_000 * S


def build(tmp_path, gaps: bool):
    """20 decisions with their verdicts, an ignored verdict, governance events and an incident;
    with ``gaps``, decision 14..16 and governance event 2 never arrived."""
    from flywheel.audit.keys import load_or_create_key
    tmp_path.mkdir()
    path, key_path = tmp_path / 'audit.sqlite', tmp_path / 'audit_key.pem'
    ledger = Ledger(path, load_or_create_key(key_path))
    trail = AuditTrail(ledger, 'map', 5.0)
    for i in range(20):
        if gaps and 13 <= i <= 15:
            continue
        pid = f'proposer/{i}'
        trail.decision(StreamPosition(GATE, EPOCH, i + 1), decision_body(
            pid, 'BLOCK' if i % 4 else 'ALLOW', verdict_body(pid, i + 1)), T0 + i * S)
    trail.decision(StreamPosition(GATE, EPOCH, 21), decision_body(
        'proposer/99', 'BLOCK', verdict_body('proposer/99', 99, key_id='forger'),
        subject='VERDICT', reasons=['BAD_SIGNATURE']), T0 + 20 * S)
    events = [governance_body('transition', 'configure: unconfigured -> inactive'),
              governance_body('installed', oracle_version='1.0.0', number=1,
                              previous_version='', bundle_sha256='ab' * 32, actor='operator')]
    for seq, body in enumerate(events, start=2 if gaps else 1):
        trail.governance(StreamPosition('/governance/events', EPOCH, seq), body, T0)
    trail.incident(IncidentReport(T0 + 10 * S, 'map', Severity.NEAR_MISS, 4.0, 2.4, 'shelf_a',
                                  0.05, 'sim', 'close pass'), T0 + 10 * S, 'topic')
    ledger.close()
    return path, key_path.with_name('audit_key.pem.pub')


@pytest.fixture
def ledger(tmp_path):
    return build(tmp_path / 'complete', gaps=False)


@pytest.fixture
def gapped(tmp_path):
    return build(tmp_path / 'gapped', gaps=True)


def test_verify_an_honest_ledger(ledger, capsys):
    path, pub = ledger
    assert main(['audit', 'verify', str(path), '--key', str(pub)]) == 0
    assert 'OK: 24 records' in capsys.readouterr().out


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


def read_mcap(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        decoded = [(channel.topic, schema.name, msg)
                   for schema, channel, _, msg in reader.iter_decoded_messages()]
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    return decoded, metadata


def test_export_writes_an_mcap_that_decodes_as_ros2_messages(gapped, tmp_path, capsys):
    path, pub = gapped
    out = tmp_path / 'flight.mcap'
    assert main(['audit', 'export', str(path), '--mcap', str(out), '--key', str(pub)]) == 0
    decoded, metadata = read_mcap(out)
    topics = [t for t, _, _ in decoded]
    assert topics.count('/gate_decisions') == 18 and topics.count('/incidents') == 1
    assert topics.count('/governance/events') == 2 and '/safety_signals' not in topics
    assert {(t, name) for t, name, _ in decoded} == {
        ('/gate_decisions', 'alignment_flywheel/msg/GateDecision'),
        ('/incidents', 'alignment_flywheel/msg/Incident'),
        ('/governance/events', 'alignment_flywheel/msg/GovernanceEvent')}
    blocked = next(m for t, _, m in decoded
                   if t == '/gate_decisions' and m.proposal_id == 'proposer/1')
    assert blocked.action == 3 and list(blocked.reasons) == [1] and not blocked.command_published
    assert (blocked.subject, blocked.epoch, blocked.seq) == (0, EPOCH, 2)
    signals, = blocked.signals                           # the verdict it was decided on
    assert signals.min_clearance == float('inf')
    assert signals.evidence[0].rule_id == 'obstacle:shelf_a'
    assert math.isnan(signals.evidence[0].location.y)       # no location: kept, not invented
    assert (signals.epoch, signals.seq, signals.key_id) == (EPOCH + 7, 2, 'oracle-1')
    assert bytes(signals.signature) == bytes.fromhex('ab' * 64) and signals.scored_hold == 0.5
    assert signals.header.frame_id == 'map'
    ignored = [m for t, _, m in decoded if t == '/gate_decisions' and m.subject == 1]
    assert [m.proposal_id for m in ignored] == ['proposer/99'] and list(ignored[0].reasons) == [34]
    transition, installed = [m for t, _, m in decoded if t == '/governance/events']
    assert (transition.event, transition.seq, transition.reason) == (
        5, 2, 'configure: unconfigured -> inactive')
    assert (installed.event, installed.number, installed.oracle_version) == (3, 1, '1.0.0')
    incident = next(m for t, _, m in decoded if t == '/incidents')
    assert incident.severity == 1 and len(incident.linked_proposal_ids) == 6
    assert metadata['oracle_releases'] == {'1.0.0': 'ab' * 32}
    assert metadata['ledger']['verified'] == 'ok' and metadata['ledger']['gap_records'] == '2'
    assert sorted(metadata['gaps'].values()) == [
        f'/gate_decisions epoch {EPOCH}: 3 records 14..16 never received',
        f'/governance/events epoch {EPOCH}: 1 records 1..1 never received']


def test_export_reads_a_ledger_written_before_the_streams_were_numbered(tmp_path):
    """Records of the old contract (no subject, epoch, seq; a verdict joined from another topic,
    release events) still export, with those fields zero."""
    from flywheel.audit.keys import load_or_create_key
    from flywheel.audit.record import RecordKind
    path = tmp_path / 'old.sqlite'
    ledger = Ledger(path, load_or_create_key(tmp_path / 'k.pem'))
    old_signals = {k: v for k, v in verdict_body('proposer/1', 1).items() if k not in (
        'frame_id', 'proposal_id', 'epoch', 'seq', 'scored_hold', 'anchor_tolerance',
        'anchor_yaw_tolerance', 'evaluation_ns', 'key_id', 'signature')}
    old_decision = {k: v for k, v in decision_body('proposer/1', 'ALLOW').items()
                    if k != 'subject'} | {'signals': old_signals}
    ledger.append(RecordKind.DECISION, old_decision, T0)
    ledger.append(RecordKind.RELEASE, {'event': 'rolled_back', 'oracle_version': '1.0.0',
                                       'previous_version': '1.1.0', 'bundle_sha256': '',
                                       'reason': 'regression', 'actor': 'operator'}, T0)
    ledger.close()
    out = tmp_path / 'old.mcap'
    assert main(['audit', 'export', str(path), '--mcap', str(out)]) == 0
    (_, _, decision), (_, _, event) = read_mcap(out)[0]
    assert (decision.subject, decision.epoch, decision.seq) == (0, 0, 0)
    assert decision.signals[0].proposal_id == 'proposer/1' and decision.signals[0].seq == 0
    assert event.event == 4 and event.reason == 'regression'


def test_verify_passes_with_gap_records_and_shows_them(gapped, capsys):
    path, pub = gapped
    assert main(['audit', 'verify', str(path), '--key', str(pub)]) == 0
    out = capsys.readouterr().out
    assert 'OK: 23 records' in out and '2 GAP records: 4 stream records never received' in out
    assert f'/gate_decisions epoch {EPOCH}: 3 records 14..16 never received' in out


def test_verify_require_complete_fails_on_any_gap(gapped, ledger, capsys):
    assert main(['audit', 'verify', str(gapped[0]), '--require-complete']) == 1
    out = capsys.readouterr().out
    assert f'/gate_decisions epoch {EPOCH}: 18 records, last seq 21; MISSING 3: 14..16' in out
    assert out.rstrip().endswith('INCOMPLETE: 2 stream epochs, 2 gap records, 4 records missing')
    assert main(['audit', 'verify', str(ledger[0]), '--require-complete']) == 0
    assert 'COMPLETE: 2 stream epochs, 0 gap records, 0 records missing' in capsys.readouterr().out


def test_gaps_lists_every_stream_epoch(gapped, capsys):
    assert main(['audit', 'gaps', str(gapped[0])]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f'/gate_decisions epoch {EPOCH}: 18 records, last seq 21; MISSING 3: '
                        '14..16')
    assert lines[1] == f'/governance/events epoch {EPOCH}: 2 records, last seq 3; MISSING 1: 1'


def test_query_shows_gaps_and_ignored_verdicts(gapped, capsys):
    assert main(['audit', 'query', str(gapped[0]), '--kind', 'gap']) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and '3 records 14..16 never received' in out[0]
    assert main(['audit', 'query', str(gapped[0]), '--kind', 'ignored_verdict', '--json']) == 0
    row, = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row['proposal_id'] == 'proposer/99' and row['reasons'] == ['BAD_SIGNATURE']
    assert row['signals']['key_id'] == 'forger' and row['stream']['seq'] == 21


def test_the_ledger_file_is_append_only_for_sqlite_users_too(ledger):
    conn = sqlite3.connect(ledger[0])
    with pytest.raises(sqlite3.DatabaseError, match='append-only'):
        conn.execute('DELETE FROM records')
    conn.close()
