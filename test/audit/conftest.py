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


# Record bodies as flywheel.ros.records makes them from messages (test/ros checks that it does).
GATE = '/gate_decisions'
EPOCH = 1_795_000_000_000_000_000


def verdict_body(pid: str, seq: int, collision_risk: float = 0.1, **changes) -> dict:
    """A SafetySignals record: every field of the verdict, its signature as hex."""
    return {'stamp_ns': EPOCH + seq * 1_000_000, 'frame_id': 'map', 'proposal_id': pid,
            'proposal_digest': f'{seq:064x}', 'oracle_version': '1.0.0', 'overlay_version': '',
            'epoch': EPOCH + 7, 'seq': seq, 'safety_score': 1.0 - collision_risk,
            'collision_risk': collision_risk, 'constraint_risk': 0.0,
            'min_clearance': float('inf'), 'time_to_collision': float('inf'),
            'prediction_uncertainty': 0.0, 'prediction_uncertainty_threshold': 0.3,
            'coverage_uncertainty': 0.0, 'coverage_uncertainty_threshold': 0.5,
            'scored_hold': 0.5, 'anchor_tolerance': 0.2, 'anchor_yaw_tolerance': 0.3,
            'evidence_status': 1,
            'evidence': [{'rule_id': 'obstacle:shelf_a', 'kind': 3, 'value': 0.2, 'x': 1.0,
                          'y': float('nan')}],
            'evaluation_ns': 1_500_000, 'key_id': 'oracle-1', 'signature': 'ab' * 64,
            **changes}


def decision_body(pid: str, action: str = 'ALLOW', signals: dict | None = None,
                  subject: str = 'PROPOSAL', **changes) -> dict:
    """A GateDecision record (without its stream position, which the trail adds)."""
    return {'subject': subject, 'proposal_id': pid, 'proposer_id': 'proposer',
            'proposal_digest': signals['proposal_digest'] if signals else '',
            'action': action, 'reasons': ['WITHIN_POLICY'] if action == 'ALLOW'
            else ['COLLISION_RISK'], 'details': [''],
            'oracle_version': signals['oracle_version'] if signals else '',
            'policy_version': 'policy-1.0.0',
            'command': [0.5, 0.0] if action == 'ALLOW' else None, 'latency_s': 0.004,
            'signals': signals, **changes}


def governance_body(event: str, reason: str = '', **changes) -> dict:
    return {'event': event, 'number': 0, 'oracle_version': '', 'previous_version': '',
            'bundle_sha256': '', 'reason': reason, 'actor': 'governance', **changes}
