"""Ledger: the append-only SQLite (WAL) file the audit node writes.

- Every record is hash-chained to the one before it (flywheel.audit.record).
- SQL triggers refuse UPDATE and DELETE on every table.
- Records are committed in batches; each commit also writes a checkpoint signing the last
  record's hash with the writer's Ed25519 key, in the same transaction. Every record is committed
  within ``commit_interval`` of being appended: a batch is due once its oldest record is
  ``commit_interval - poll_period`` old, and ``commit_if_due()`` runs on every append and must be
  called at least every ``poll_period`` (the audit node's timer does), so the commit comes at most
  one poll later. A kill -9 therefore loses at most the last ``commit_interval`` of records, and
  never breaks the chain (SQLite transactions are atomic; WAL with synchronous=NORMAL survives a
  process crash).
- On open, the last ``verify_window`` records (from the newest valid checkpoint before them) are
  verified. A damaged tail is reported loudly and a SEGMENT record is appended, anchored to the
  last good record and naming the damaged range, so writing continues on a sound chain and the
  damage stays on the record. The whole ledger is verified by `flywheel audit verify`.
Time is passed in: ``clock`` (monotonic seconds) decides when a batch is due.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flywheel.audit.keys import checkpoint_message, key_id, public_pem, signature_ok
from flywheel.audit.record import GENESIS, RecordKind, canonical_body, chain_hash
from flywheel.audit.verify import walk
from flywheel.errors import LedgerError

FORMAT = 'flywheel-ledger-1'
# commit_if_due() is polled this many times per commit_interval (see the module docstring).
POLLS_PER_INTERVAL = 4
log = logging.getLogger('flywheel.audit')

_SCHEMA = '''
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, stamp_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_time ON records (stamp_ns);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, stamp_ns);
'''
_APPEND_ONLY = ''.join(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;\n"
    for table in ('meta', 'records', 'checkpoints') for verb in ('update', 'delete'))


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    path = Path(path)
    if readonly:
        if not path.is_file():
            raise LedgerError(f'{path}: no such ledger')
        conn = sqlite3.connect(f'file:{path}?mode=ro', uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    try:
        if not readonly:
            conn.execute('PRAGMA journal_mode=WAL')
            conn.execute('PRAGMA synchronous=NORMAL')
            conn.executescript(_SCHEMA + _APPEND_ONLY)
        fmt = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f'{path}: not a flywheel ledger ({exc})') from exc
    if fmt is not None and fmt[0] != FORMAT:
        conn.close()
        raise LedgerError(f'{path}: format {fmt[0]!r}, expected {FORMAT!r}')
    return conn


class Ledger:
    def __init__(self, path: str | Path, key: Ed25519PrivateKey, commit_interval: float = 0.1,
                 verify_window: int = 100_000, clock: Callable[[], float] = time.monotonic,
                 now_ns: Callable[[], int] = time.time_ns):
        if not commit_interval > 0:
            raise LedgerError(f'commit_interval: must be > 0, got {commit_interval}')
        self.path = Path(path)
        self._key = key
        self._key_id = key_id(key.public_key())
        self.commit_interval = commit_interval
        self.poll_period = commit_interval / POLLS_PER_INTERVAL
        self.verify_window = verify_window
        self._clock = clock
        self._now_ns = now_ns
        self._conn = connect(self.path)
        self._batch_opened: float | None = None    # when the oldest uncommitted record came
        self._init_meta()
        self.seq, self.prev_hash = self._recover()
        self.committed_seq = self.seq

    # -- writing --------------------------------------------------------------------------------

    def append(self, kind: RecordKind, body: dict, stamp_ns: int) -> int:
        """Add a record to the open batch; commit the batch if it is due. Returns its seq."""
        text = canonical_body(body)
        seq = self.seq + 1
        record_hash = chain_hash(self.prev_hash, seq, stamp_ns, kind.value, text)
        if self._batch_opened is None:
            self._conn.execute('BEGIN')
            self._batch_opened = self._clock()
        self._conn.execute('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)',
                           (seq, int(stamp_ns), kind.value, text, self.prev_hash, record_hash))
        self.seq, self.prev_hash = seq, record_hash
        self.commit_if_due()
        return seq

    def commit_if_due(self) -> bool:
        """Commit if the oldest uncommitted record would otherwise miss its deadline before the
        next poll; whether it committed."""
        if (self._batch_opened is not None
                and self._clock() - self._batch_opened >= self.commit_interval - self.poll_period):
            self.commit()
            return True
        return False

    def commit(self) -> None:
        """Sign the last record and commit the batch with its checkpoint, atomically."""
        if self._batch_opened is not None:
            signature = self._key.sign(checkpoint_message(self.seq, self.prev_hash)).hex()
            self._conn.execute('INSERT INTO checkpoints VALUES (?, ?, ?, ?)',
                               (self.seq, self.prev_hash, self._key_id, signature))
            self._conn.execute('COMMIT')
            self._batch_opened = None
            self.committed_seq = self.seq

    def close(self) -> None:
        if self._conn is not None:
            self.commit()
            self._conn.close()
            self._conn = None

    # -- reading --------------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    # -- opening --------------------------------------------------------------------------------

    def _init_meta(self) -> None:
        if self._conn.execute("SELECT 1 FROM meta WHERE key = 'format'").fetchone():
            return
        self._conn.executemany('INSERT INTO meta VALUES (?, ?)', [
            ('format', FORMAT), ('public_key', public_pem(self._key.public_key()).decode()),
            ('created_ns', str(self._now_ns()))])

    def _recover(self) -> tuple[int, str]:
        """The last good (seq, hash); a damaged tail gets a SEGMENT record and a loud log."""
        last = self._conn.execute('SELECT COALESCE(MAX(seq), 0) FROM records').fetchone()[0]
        start_seq, start_hash = self._valid_checkpoint_at_or_before(last - self.verify_window)
        found = walk(self._conn, start_seq, start_hash, forgive_acknowledged=True)
        signed_seq, _ = self._valid_checkpoint_at_or_before(last)
        if found.first_bad is None and signed_seq == last:
            return last, found.last_hash
        # Damaged: a bad record, or records no checkpoint of ours signs (not written by us).
        if found.first_bad is not None:
            damaged_from, anchor_seq, anchor_hash = found.first_bad, found.last_seq, found.last_hash
            problem = found.problem
        else:
            anchor_seq = signed_seq
            anchor_hash = walk(self._conn, start_seq, start_hash, remember={anchor_seq}).hashes.get(
                anchor_seq, start_hash)
            damaged_from = anchor_seq + 1
            problem = 'records not covered by a checkpoint signed by this writer'
        log.error('audit ledger %s: records %d..%d are damaged (%s); anchoring a new segment to '
                  'record %d', self.path, damaged_from, last, problem, anchor_seq)
        self.seq, self.prev_hash = last, anchor_hash
        segment_seq = self.append(RecordKind.SEGMENT, {
            'anchor_seq': anchor_seq, 'anchor_hash': anchor_hash, 'damaged_from': damaged_from,
            'damaged_to': last, 'problem': problem}, self._now_ns())
        self.commit()
        return segment_seq, self.prev_hash

    def _valid_checkpoint_at_or_before(self, seq: int) -> tuple[int, str]:
        """The newest checkpoint at or before ``seq`` signed by this key whose record still hashes
        to the signed hash; (0, GENESIS) when there is none."""
        public = self._key.public_key()
        rows = self._conn.execute(
            'SELECT c.seq, c.hash, c.signature, r.stamp_ns, r.kind, r.body, r.prev_hash, r.hash '
            'FROM checkpoints c JOIN records r ON r.seq = c.seq WHERE c.seq <= ? '
            'ORDER BY c.seq DESC', (seq,))
        for seq, signed, signature, stamp_ns, kind, body, prev_hash, stored in rows:
            if (stored == signed and chain_hash(prev_hash, seq, stamp_ns, kind, body) == signed
                    and signature_ok(public, seq, signed, signature)):
                return seq, signed
        return 0, GENESIS
