from __future__ import annotations

import sqlite3

import pytest

from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger, connect
from flywheel.audit.record import RecordKind
from flywheel.audit.verify import verify_ledger


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key(tmp_path):
    return load_or_create_key(tmp_path / 'keys' / 'audit.pem')


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / 'ledger.sqlite'


def fill(path, key, count: int, batch: int = 10) -> None:
    """``count`` decision records, committed every ``batch`` records."""
    clock = FakeClock()
    ledger = Ledger(path, key, commit_interval=1.0, clock=clock)
    for i in range(count):
        ledger.append(RecordKind.DECISION, {'proposal_id': f'proposer/{i}', 'action': 'ALLOW',
                                            'latency_s': 0.004, 'ttc': float('inf')}, 1000 + i)
        if (i + 1) % batch == 0:
            ledger.commit()
    ledger.close()


def records_in(path, **filters) -> list[dict]:
    """The records a read-only auditor sees, filtered as by `flywheel audit query`."""
    from flywheel.audit.query import Query, records
    conn = connect(path, readonly=True)
    try:
        return list(records(conn, Query(**filters)))
    finally:
        conn.close()


def report(path, key):
    conn = connect(path, readonly=True)
    try:
        return verify_ledger(conn, key.public_key())
    finally:
        conn.close()


def tamper(path, *statements: str) -> None:
    """What an attacker with file access does: drop the triggers, then edit."""
    conn = sqlite3.connect(path)
    for table in ('records', 'checkpoints'):
        for verb in ('update', 'delete'):
            conn.execute(f'DROP TRIGGER IF EXISTS {table}_no_{verb}')
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
