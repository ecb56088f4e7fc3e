"""`verify` names the first bad record for each kind of edit an attacker with the file can make."""
from flywheel.audit.record import chain_hash
from test.audit.conftest import fill, report, tamper


def test_a_modified_record(ledger_path, key):
    fill(ledger_path, key, 50)
    tamper(ledger_path, "UPDATE records SET body = '{\"action\":\"BLOCK\"}' WHERE seq = 17")
    r = report(ledger_path, key)
    assert r.first_bad == 17 and 'modified' in r.problem


def test_a_deleted_record(ledger_path, key):
    fill(ledger_path, key, 50)
    tamper(ledger_path, 'DELETE FROM records WHERE seq = 23')
    r = report(ledger_path, key)
    assert r.first_bad == 23 and 'missing' in r.problem


def test_an_inserted_record(ledger_path, key):
    fill(ledger_path, key, 50)
    # make room by shifting nothing: insert between by renumbering the tail up by one
    tamper(ledger_path, 'UPDATE records SET seq = seq + 1000 WHERE seq > 30',
           'UPDATE records SET seq = seq - 999 WHERE seq > 1000',
           "INSERT INTO records VALUES (31, 1, 'decision', '{}', 'x', 'y')")
    r = report(ledger_path, key)
    assert r.first_bad == 31


def test_two_records_swapped(ledger_path, key):
    fill(ledger_path, key, 50)
    tamper(ledger_path, 'UPDATE records SET seq = -1 WHERE seq = 12',
           'UPDATE records SET seq = 12 WHERE seq = 13',
           'UPDATE records SET seq = 13 WHERE seq = -1')
    r = report(ledger_path, key)
    assert r.first_bad == 12


def test_a_rewritten_chain_fails_at_the_signed_checkpoints(ledger_path, key):
    """Change record 35 and recompute every hash after it: the chain is consistent again, but the
    checkpoints (signed by the writer's key, which the attacker lacks) no longer match."""
    fill(ledger_path, key, 50)
    import sqlite3
    tamper(ledger_path, "UPDATE records SET body = '{\"action\":\"ALLOW\",\"forged\":true}' "
                        'WHERE seq = 35')
    conn = sqlite3.connect(ledger_path)
    prev = conn.execute('SELECT hash FROM records WHERE seq = 34').fetchone()[0]
    rows = conn.execute(
        'SELECT seq, stamp_ns, kind, body FROM records WHERE seq >= 35 ORDER BY seq').fetchall()
    for seq, stamp, kind, body in rows:
        new = chain_hash(prev, seq, stamp, kind, body)
        conn.execute('UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?', (prev, new, seq))
        prev = new
    conn.commit()
    conn.close()
    r = report(ledger_path, key)
    assert r.first_bad == 31 and 'checkpoint at record 40' in r.problem   # after the one at 30


def test_a_truncated_tail_with_its_checkpoints_dropped_is_unsigned(ledger_path, key):
    fill(ledger_path, key, 50, batch=50)
    tamper(ledger_path, 'DELETE FROM checkpoints')
    r = report(ledger_path, key)
    assert r.first_bad == 1 and 'not covered by a signed checkpoint' in r.problem


def test_verifying_with_the_wrong_key_fails(ledger_path, key, tmp_path):
    from flywheel.audit.keys import load_or_create_key
    fill(ledger_path, key, 20)
    assert not report(ledger_path, load_or_create_key(tmp_path / 'stranger.pem')).ok


def test_a_ledger_with_gap_records_verifies_and_its_summary_names_them(ledger_path, key):
    from flywheel.audit.ledger import Ledger
    from flywheel.audit.record import RecordKind
    from flywheel.audit.sequence import Gap
    ledger = Ledger(ledger_path, key)
    ledger.append(RecordKind.GAP, Gap('/gate_decisions', 7, 3, 40).body(), 1)
    ledger.append(RecordKind.GAP, Gap('/governance/events', 9, 1, 2).body(), 2)
    ledger.close()
    r = report(ledger_path, key)
    assert r.ok and r.missing == 40
    assert r.summary().endswith('; 2 GAP records: 40 stream records never received')
