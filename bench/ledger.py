"""Audit ledger throughput: sustained append rate with the default durability (a commit with a
signed checkpoint every 0.1 s) and full verification rate.

Targets (issue): append >= 5,000 records/s, verify >= 100,000 records/s. Baselines in the same
process: the same rows inserted into a plain SQLite table with the same batching (no hashing, no
signing), and the same rows read back without verifying.

    scripts/run.sh python bench/ledger.py [--records 50000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from flywheel.audit.keys import load_or_create_key  # noqa: E402
from flywheel.audit.ledger import Ledger, connect  # noqa: E402
from flywheel.audit.record import RecordKind, canonical_body  # noqa: E402
from flywheel.audit.verify import verify_ledger  # noqa: E402


def decision(i: int) -> dict:
    """A decision record as the audit node writes it, with its signals."""
    return {'proposal_id': f'proposer/{i}', 'proposer_id': 'proposer',
            'proposal_digest': f'{i:064x}', 'action': 'ALLOW', 'reasons': ['WITHIN_POLICY'],
            'details': [''], 'oracle_version': '1.0.0', 'policy_version': 'policy-1.0.0',
            'command': [0.5, 0.0], 'latency_s': 0.0041,
            'signals': {'proposal_digest': f'{i:064x}', 'oracle_version': '1.0.0',
                        'overlay_version': '', 'safety_score': 1.0, 'collision_risk': 0.0,
                        'constraint_risk': 0.0, 'min_clearance': math.inf,
                        'time_to_collision': math.inf, 'prediction_uncertainty': 0.0,
                        'prediction_uncertainty_threshold': 0.3, 'coverage_uncertainty': 0.0,
                        'coverage_uncertainty_threshold': 0.5, 'evidence_status': 0,
                        'evidence': [], 'stamp_ns': 1_795_000_000_000_000_000 + i}}


def append_rate(path: Path, key, count: int) -> float:
    ledger = Ledger(path, key)                     # defaults: commit_interval 0.1 s
    start = time.perf_counter()
    for i in range(count):
        ledger.append(RecordKind.DECISION, decision(i), 1_795_000_000_000_000_000 + i)
    ledger.close()
    return count / (time.perf_counter() - start)


def plain_rate(path: Path, count: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('PRAGMA synchronous=NORMAL')
    conn.execute('CREATE TABLE rows (seq INTEGER PRIMARY KEY, stamp_ns INTEGER, body TEXT)')
    start, last_commit = time.perf_counter(), time.monotonic()
    conn.execute('BEGIN')
    for i in range(count):
        conn.execute('INSERT INTO rows VALUES (?, ?, ?)',
                     (i + 1, 1_795_000_000_000_000_000 + i, canonical_body(decision(i))))
        if time.monotonic() - last_commit >= 0.1:
            conn.execute('COMMIT')
            conn.execute('BEGIN')
            last_commit = time.monotonic()
    conn.execute('COMMIT')
    conn.close()
    return count / (time.perf_counter() - start)


def verify_rate(path: Path, key, count: int) -> float:
    conn = connect(path, readonly=True)
    start = time.perf_counter()
    report = verify_ledger(conn, key.public_key())
    elapsed = time.perf_counter() - start
    conn.close()
    assert report.ok and report.records == count, report.summary()
    return count / elapsed


def read_rate(path: Path, count: int) -> float:
    conn = connect(path, readonly=True)
    start = time.perf_counter()
    rows = sum(1 for _ in conn.execute('SELECT seq, stamp_ns, kind, body, prev_hash, hash '
                                       'FROM records ORDER BY seq'))
    elapsed = time.perf_counter() - start
    conn.close()
    assert rows == count
    return count / elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=50000)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    rates: dict[str, list[float]] = {'append': [], 'plain': [], 'verify': [], 'read': []}
    with tempfile.TemporaryDirectory() as scratch:
        key = load_or_create_key(Path(scratch) / 'key.pem')
        for run in range(args.repeats):
            ledger, plain = Path(scratch) / f'ledger{run}.sqlite', Path(scratch) / f'p{run}.sqlite'
            rates['plain'].append(plain_rate(plain, args.records))
            rates['append'].append(append_rate(ledger, key, args.records))
            rates['read'].append(read_rate(ledger, args.records))
            rates['verify'].append(verify_rate(ledger, key, args.records))
    med = {k: statistics.median(v) for k, v in rates.items()}
    low = {k: min(v) for k, v in rates.items()}
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/ledger.py --records {args.records} '
          f'--repeats {args.repeats}')
    print(f'{args.repeats} runs of {args.records} decision records (with their signals)\n')
    print('| case | median (records/s) | slowest run (records/s) |\n|---|---|---|')
    print(f'| append, commit + signed checkpoint every 0.1 s | {med["append"]:,.0f} | '
          f'{low["append"]:,.0f} |')
    print(f'| baseline: plain SQLite insert, same batching | {med["plain"]:,.0f} | '
          f'{low["plain"]:,.0f} |')
    print(f'| verify (chain + checkpoints) | {med["verify"]:,.0f} | {low["verify"]:,.0f} |')
    print(f'| baseline: read the rows only | {med["read"]:,.0f} | {low["read"]:,.0f} |')
    print(f'\nappend: {med["append"] / med["plain"]:.2f} of plain SQLite (target >= 5,000/s); '
          f'verify: {med["verify"] / med["read"]:.2f} of reading alone (target >= 100,000/s)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
