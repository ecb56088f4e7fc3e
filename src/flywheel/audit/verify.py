"""Verification of a ledger: the hash chain record by record, and the signed checkpoints.

A record is good when its sequence number follows the previous one, its prev_hash is the hash the
verifier computed for the previous record (for a SEGMENT record: for its declared anchor), and its
stored hash is the hash of its own content. Every record must also be covered by a checkpoint
whose Ed25519 signature verifies and whose hash is the one the verifier computed: a chain rewritten
from some point on (hashes recomputed) fails there, since the rewriter cannot sign.

GAP records (stream records the audit never received) are honest records: a chain holding them
verifies, and the report counts them so a summary never hides them
(flywheel.audit.sequence.check_completeness says what exactly is missing).
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from flywheel.audit.keys import key_id, signature_ok
from flywheel.audit.record import GENESIS, RecordKind, chain_hash


@dataclass
class Walk:
    """What walking the chain from a known-good point found."""

    last_seq: int                 # the last record that verified
    last_hash: str
    records: int = 0
    first_bad: int | None = None
    problem: str = ''
    hashes: dict[int, str] = field(default_factory=dict)   # computed, at the requested seqs
    segments: list[dict] = field(default_factory=list)


def walk(conn: sqlite3.Connection, after_seq: int = 0, after_hash: str = GENESIS,
         remember: set[int] = frozenset(), forgive_acknowledged: bool = False) -> Walk:
    """Verify the chain after (after_seq, after_hash); stop counting good records at the first bad
    one but keep reading, so later SEGMENT records (acknowledged damage) are still reported.

    With ``forgive_acknowledged`` (the writer, at start-up), damage that a later good SEGMENT
    record already acknowledges is not reported again.
    """
    result = Walk(after_seq, after_hash)
    anchors = {segment['anchor_seq'] for segment in (_segment(body) for (body,) in conn.execute(
        'SELECT body FROM records WHERE kind = ? AND seq > ?', (RecordKind.SEGMENT.value,
                                                                after_seq))) if segment}
    remember = set(remember) | anchors
    computed = {after_seq: after_hash}
    expected, prev, chain_ok = after_seq + 1, after_hash, True
    rows = conn.execute('SELECT seq, stamp_ns, kind, body, prev_hash, hash FROM records '
                        'WHERE seq > ? ORDER BY seq', (after_seq,))
    for seq, stamp_ns, kind, body, prev_hash, stored in rows:
        result.records += 1
        problem = ''
        if seq != expected:
            problem = (f'record(s) {expected}..{seq - 1} missing' if seq > expected
                       else f'sequence number {seq} out of order')
        want_prev = prev
        if not problem and kind == RecordKind.SEGMENT.value:
            segment = _segment(body)
            if segment is None:
                problem = 'malformed segment record'
            else:
                result.segments.append(segment | {'seq': seq})
                want_prev = computed.get(segment['anchor_seq'], '')
        if not problem and prev_hash != want_prev:
            problem = 'prev_hash does not match the previous record (chain broken)'
        try:
            own = chain_hash(prev_hash, seq, stamp_ns, kind, body)
        except (ValueError, TypeError):
            own, problem = stored, problem or 'malformed record (hash or fields)'
        if not problem and own != stored:
            problem = 'content does not match its hash (modified)'
        if problem:
            if result.first_bad is None:
                result.first_bad = expected if seq > expected else seq
                result.problem = problem
            chain_ok = False
        elif chain_ok or kind == RecordKind.SEGMENT.value:
            if (not chain_ok and forgive_acknowledged and result.first_bad is not None
                    and segment['damaged_from'] <= result.first_bad <= segment['damaged_to']):
                result.first_bad, result.problem = None, ''
            chain_ok = True                   # a good segment restarts the chain
            result.last_seq, result.last_hash = seq, own
        if seq in remember:
            computed[seq] = own
        expected, prev = seq + 1, (own if not problem else stored)
    result.hashes = {s: h for s, h in computed.items() if s in remember}
    return result


def _segment(body) -> dict | None:
    try:
        segment = json.loads(body)
        int(segment['anchor_seq']), int(segment['damaged_from']), int(segment['damaged_to'])
        return segment
    except (ValueError, TypeError, KeyError):
        return None


@dataclass
class VerifyReport:
    records: int
    checkpoints: int
    first_bad: int | None
    problem: str
    signed_through: int          # highest seq covered by a valid signed checkpoint (0: none)
    last_seq: int
    key_id: str
    segments: list[dict]
    gaps: list[dict] = field(default_factory=list)   # GAP record bodies, with their seq

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    @property
    def missing(self) -> int:
        """Stream records that GAP records name as never received."""
        return sum(g['count'] for g in self.gaps if isinstance(g.get('count'), int))

    def summary(self) -> str:
        if self.ok:
            gaps = (f'; {len(self.gaps)} GAP records: {self.missing} stream records never '
                    'received' if self.gaps else '')
            return (f'OK: {self.records} records, chain intact, signed through record '
                    f'{self.signed_through} by key {self.key_id}{gaps}')
        acknowledged = [s for s in self.segments
                        if s['damaged_from'] <= self.first_bad <= s['damaged_to']]
        note = (f' (damage acknowledged by segment record {acknowledged[0]["seq"]})'
                if acknowledged else '')
        return f'TAMPERED: first bad record {self.first_bad}: {self.problem}{note}'


def verify_ledger(conn: sqlite3.Connection, public_key) -> VerifyReport:
    """Verify everything: the whole chain and every checkpoint, against ``public_key``."""
    checkpoints = conn.execute(
        'SELECT seq, hash, signature FROM checkpoints ORDER BY seq').fetchall()
    result = walk(conn, remember={seq for seq, _, _ in checkpoints})
    last_seq = conn.execute('SELECT COALESCE(MAX(seq), 0) FROM records').fetchone()[0]
    first_bad, problem = result.first_bad, result.problem
    signed_through, prev_signed = 0, 0
    for seq, record_hash, signature in checkpoints:
        valid = (signature_ok(public_key, seq, record_hash, signature)
                 and result.hashes.get(seq) == record_hash)
        if valid:
            prev_signed, signed_through = seq, max(signed_through, seq)
        elif first_bad is None or prev_signed + 1 < first_bad:
            first_bad = prev_signed + 1
            problem = (f'checkpoint at record {seq} does not verify: the chain after record '
                       f'{prev_signed} was rewritten, or signed by another key')
            break
    if first_bad is None and signed_through < last_seq:
        first_bad = signed_through + 1
        problem = (f'records {signed_through + 1}..{last_seq} are not covered by a signed '
                   'checkpoint (appended or rewritten outside the writer)')
    return VerifyReport(result.records, len(checkpoints), first_bad, problem, signed_through,
                        last_seq, key_id(public_key), result.segments, _gaps(conn))


def gap_text(gap: dict) -> str:
    """One line for a GAP record's body, however malformed."""
    where = gap.get('stream') if isinstance(gap.get('stream'), dict) else {}
    return (f'{where.get("name")} epoch {where.get("epoch")}: {gap.get("count")} records '
            f'{gap.get("first")}..{gap.get("last")} never received')


def _gaps(conn: sqlite3.Connection) -> list[dict]:
    found = []
    for seq, body in conn.execute('SELECT seq, body FROM records WHERE kind = ? ORDER BY seq',
                                  (RecordKind.GAP.value,)):
        try:
            gap = json.loads(body)
        except ValueError:
            gap = {}
        found.append((gap if isinstance(gap, dict) else {}) | {'seq': seq})
    return found
