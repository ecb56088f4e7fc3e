"""The ledger: append-only, chained, batched commits with signed checkpoints, loud recovery."""
import logging
import sqlite3

import pytest
from hypothesis import given, settings, strategies as st

from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger, connect
from flywheel.audit.record import RecordKind, canonical_body
from flywheel.errors import LedgerError
from test.audit.conftest import FakeClock, fill, report, tamper


class LedgerLog(logging.Handler):
    """What the ledger logs, captured on its own logger.

    Not caplog: caplog listens on the root logger and relies on propagation, and with the ROS
    launch pytest plugins loaded every logger created afterwards is launch's LaunchLogger, which
    does not propagate, so caplog would see nothing."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @property
    def text(self) -> str:
        return '\n'.join(self.messages)

    def clear(self) -> None:
        self.messages.clear()


@pytest.fixture
def ledger_log():
    logger = logging.getLogger('flywheel.audit')
    handler, level = LedgerLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_an_honest_ledger_verifies(ledger_path, key):
    fill(ledger_path, key, 95)
    r = report(ledger_path, key)
    assert r.ok and r.records == 95 and r.signed_through == 95 and r.checkpoints == 10
    assert 'OK: 95 records' in r.summary()


@pytest.mark.parametrize('statement', [
    "UPDATE records SET body = '{}' WHERE seq = 3",
    'DELETE FROM records WHERE seq = 3',
    "UPDATE checkpoints SET signature = '00' WHERE seq = 10",
    'DELETE FROM checkpoints'])
def test_triggers_refuse_updates_and_deletes(ledger_path, key, statement):
    fill(ledger_path, key, 20)
    conn = sqlite3.connect(ledger_path)
    with pytest.raises(sqlite3.DatabaseError, match='append-only'):
        conn.execute(statement)
    conn.close()


def test_a_batch_is_committed_once_its_oldest_record_would_miss_the_next_poll(ledger_path, key):
    clock = FakeClock()
    ledger = Ledger(ledger_path, key, commit_interval=0.1, clock=clock)
    assert ledger.poll_period == pytest.approx(0.025)
    ledger.append(RecordKind.DECISION, {'n': 1}, 1)
    reader = connect(ledger_path, readonly=True)
    count = lambda: reader.execute('SELECT COUNT(*) FROM records').fetchone()[0]  # noqa: E731
    assert count() == 0                              # still in the open batch
    clock.now = 0.07
    ledger.append(RecordKind.DECISION, {'n': 2}, 2)
    assert not ledger.commit_if_due() and count() == 0
    clock.now = 0.08                                 # the next poll would be too late
    assert ledger.commit_if_due() and count() == 2
    assert reader.execute('SELECT seq FROM checkpoints').fetchall() == [(2,)]
    clock.now = 0.15                                 # a new batch: its own age counts
    ledger.append(RecordKind.DECISION, {'n': 3}, 3)
    clock.now = 0.2
    assert not ledger.commit_if_due() and count() == 2
    clock.now = 0.23
    ledger.append(RecordKind.DECISION, {'n': 4}, 4)  # an append commits a due batch too
    assert count() == 4
    reader.close()
    ledger.close()


def commit_latencies(interval: float, appends: list[float], phase: float) -> list[float]:
    """Run a ledger on an injected clock as the audit node drives it (commit_if_due every
    poll_period, from an arbitrary phase); how long each record waited for its commit."""
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock()
        ledger = Ledger(Path(tmp) / 'l.sqlite', load_or_create_key(Path(tmp) / 'k.pem'),
                        commit_interval=interval, clock=clock)
        polls = [phase * ledger.poll_period + k * ledger.poll_period
                 for k in range(int((max(appends) + 2 * interval) / ledger.poll_period) + 2)]
        events = sorted([(t, 'append') for t in appends] + [(t, 'poll') for t in polls])
        appended, latencies = {}, {}
        for t, what in events:
            clock.now = t
            if what == 'append':
                appended[ledger.append(RecordKind.DECISION, {}, 0)] = t
            else:
                ledger.commit_if_due()
            for seq in appended:
                if seq <= ledger.committed_seq and seq not in latencies:
                    latencies[seq] = t - appended[seq]
        ledger.close()
    assert len(latencies) == len(appends), 'a record was never committed'
    return list(latencies.values())


def test_a_record_arriving_just_after_a_commit_waits_at_most_one_interval():
    # a commit at 0.10 made by an append between two polls, then a record at 0.11: under the
    # old rule (due commit_interval after the last commit, polled every commit_interval) it
    # waited until 0.25
    assert max(commit_latencies(0.1, [0.0, 0.10, 0.11], phase=0.5)) <= 0.1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=40), st.floats(0.0, 0.999),
       st.sampled_from([0.01, 0.1, 0.5]))
def test_every_record_is_committed_within_one_interval(appends, phase, interval):
    assert max(commit_latencies(interval, sorted(appends), phase)) <= interval + 1e-9


def test_reopening_continues_the_same_chain(ledger_path, key):
    fill(ledger_path, key, 10)
    ledger = Ledger(ledger_path, key)
    assert ledger.seq == 10
    ledger.append(RecordKind.LIFECYCLE, {'event': 'restart'}, 5000)
    ledger.close()
    r = report(ledger_path, key)
    assert r.ok and r.records == 11 and r.segments == []


def test_a_damaged_tail_is_reported_and_a_segment_anchored(ledger_path, key, ledger_log):
    fill(ledger_path, key, 30)
    tamper(ledger_path, "UPDATE records SET body = '{\"action\":\"BLOCK\"}' WHERE seq = 27")
    ledger = Ledger(ledger_path, key)
    assert 'records 27..30 are damaged' in ledger_log.text
    assert ledger.seq == 31
    ledger.append(RecordKind.DECISION, {'after': 'recovery'}, 9999)
    ledger.close()
    r = report(ledger_path, key)
    assert r.first_bad == 27 and 'acknowledged by segment record 31' in r.summary()
    assert r.segments[0]['anchor_seq'] == 26 and r.segments[0]['damaged_to'] == 30
    assert r.signed_through == 32
    # and the next start finds nothing new to complain about
    ledger_log.clear()
    Ledger(ledger_path, key).close()
    assert ledger_log.text == ''


def test_records_appended_outside_the_writer_are_a_damaged_tail(ledger_path, key, ledger_log):
    fill(ledger_path, key, 10)
    conn = connect(ledger_path)
    last_hash = conn.execute('SELECT hash FROM records WHERE seq = 10').fetchone()[0]
    from flywheel.audit.record import chain_hash
    forged = chain_hash(last_hash, 11, 1, 'decision', '{}')
    conn.execute('INSERT INTO records VALUES (11, 1, ?, ?, ?, ?)',
                 ('decision', '{}', last_hash, forged))
    conn.close()
    Ledger(ledger_path, key).close()
    assert 'records 11..11 are damaged' in ledger_log.text


def test_another_writers_key_cannot_continue_it(ledger_path, key, tmp_path):
    fill(ledger_path, key, 5)
    other = load_or_create_key(tmp_path / 'other.pem')
    Ledger(ledger_path, other).close()          # it cannot verify our checkpoints
    mine, theirs = report(ledger_path, key), report(ledger_path, other)
    assert theirs.first_bad == 1 and theirs.segments[0]['damaged_from'] == 1
    assert mine.first_bad == 6 and 'checkpoint at record 6' in mine.problem


def test_not_a_ledger(tmp_path, key):
    bogus = tmp_path / 'bogus.sqlite'
    bogus.write_bytes(b'this is not sqlite' * 100)
    with pytest.raises(LedgerError, match='not a flywheel ledger'):
        Ledger(bogus, key)
    with pytest.raises(LedgerError, match='no such ledger'):
        connect(tmp_path / 'missing.sqlite', readonly=True)


def test_a_key_file_that_is_not_a_key(tmp_path):
    bad = tmp_path / 'key.pem'
    bad.write_text('hello')
    with pytest.raises(LedgerError, match='not a PEM private key'):
        load_or_create_key(bad)


def test_the_private_key_is_created_private(tmp_path):
    load_or_create_key(tmp_path / 'k.pem')
    assert (tmp_path / 'k.pem').stat().st_mode & 0o077 == 0
    assert (tmp_path / 'k.pem.pub').read_text().startswith('-----BEGIN PUBLIC KEY-----')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), min_size=1,
                max_size=8))
def test_records_round_trip_and_verify(tmp_path_factory, bodies):
    import json
    path = tmp_path_factory.mktemp('rt') / 'ledger.sqlite'
    key = load_or_create_key(path.parent / 'key.pem')
    ledger = Ledger(path, key)
    for i, body in enumerate(bodies):
        ledger.append(RecordKind.INCIDENT, body, i)
    ledger.close()
    conn = connect(path, readonly=True)
    stored = [json.loads(b) for (b,) in conn.execute('SELECT body FROM records ORDER BY seq')]
    conn.close()
    assert [canonical_body(b) for b in stored] == [canonical_body(b) for b in bodies]
    assert report(path, key).ok
