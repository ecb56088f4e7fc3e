"""Sequenced streams: what the audit has recorded of each publisher's numbered records, so that a
record delivered twice is recorded once and a record that never arrived is on the record as a GAP.

Publishers of what the audit must not miss (the Gate's decisions, governance events) number it: an
``epoch`` (the publisher's session) and a ``seq`` running 1, 2, 3, ... with no gaps, on a
transient-local topic, so an audit that starts late or restarts receives the recent history again.
A record's StreamPosition (stream, epoch, seq) is stored in its body as ``'stream': {'name',
'epoch', 'seq'}`` (nested: the ledger's own record number is ``seq`` too). For each (stream, epoch)
``Streams`` keeps the last seq recorded and the ranges recorded as missing; ``Streams.admit`` is
the rule for one arriving record:

- seq <= last, not missing: already recorded (history re-delivered after a restart): dropped.
- seq <= last, inside a recorded gap: it arrived late; recorded, and the gap shrinks.
- seq == last + 1: recorded.
- seq > last + 1: Gap(last + 1 .. seq - 1) is recorded first, then the record. An epoch never heard
  before has last = 0: its first record at seq 5 means 1..4 were missed.
- seq == 0: not numbered (outside the contract): recorded, never taken for a duplicate.

A new epoch of a stream is a sequence of its own. The state is derived from the ledger itself
(``Streams.from_ledger``: the newest STREAMS record, then replaying every record after it with the
same rule), so a restarted audit continues exactly where its committed records stop.
``check_completeness`` replays a whole ledger the same way and reports what an auditor asks: gaps
still missing, missing ranges no GAP record names, records recorded twice. What is lost after an
epoch's last recorded record, with nothing after it, cannot be seen by anyone but the publisher.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field

from flywheel.audit.record import RecordKind

log = logging.getLogger('flywheel.audit')

# Kinds whose records may belong to a sequenced stream (their body then has a 'stream').
STREAM_KINDS = (RecordKind.DECISION, RecordKind.IGNORED_VERDICT, RecordKind.RELEASE,
                RecordKind.LIFECYCLE)
_STREAM_KIND_VALUES = frozenset(k.value for k in STREAM_KINDS)


@dataclass(frozen=True)
class StreamPosition:
    """Where a record sits: which stream, which epoch (publisher session) of it, which number."""

    stream: str
    epoch: int
    seq: int

    def __post_init__(self):
        _text(self.stream)
        _number(self.epoch)
        _number(self.seq)

    def body(self) -> dict:
        return {'name': self.stream, 'epoch': self.epoch, 'seq': self.seq}

    @classmethod
    def of_record(cls, kind: str, body: dict) -> 'StreamPosition | None':
        """The position of a record of a sequenced stream; None for any other record."""
        where = body.get('stream') if kind in _STREAM_KIND_VALUES else None
        if not isinstance(where, dict):
            return None
        try:
            return cls(where['name'], where['epoch'], where['seq'])
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class Gap:
    """Records first..last of a stream's epoch that the audit never received."""

    stream: str
    epoch: int
    first: int
    last: int

    def __post_init__(self):
        _text(self.stream)
        _number(self.epoch)
        if not (isinstance(self.first, int) and isinstance(self.last, int)
                and 1 <= self.first <= self.last):
            raise ValueError(f'gap: need 1 <= first <= last, got {self.first!r}..{self.last!r}')

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def body(self) -> dict:
        return {'stream': {'name': self.stream, 'epoch': self.epoch}, 'first': self.first,
                'last': self.last, 'count': self.count}

    @classmethod
    def from_body(cls, body: dict) -> 'Gap':
        """ValueError naming the record when a field is missing or not a number."""
        try:
            return cls(body['stream']['name'], body['stream']['epoch'], body['first'],
                       body['last'])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f'malformed gap record {body!r}: {exc}') from exc


@dataclass(frozen=True)
class Admission:
    """What to do with one arriving record."""

    record: bool                  # False: it is already in the ledger
    gap: Gap | None = None        # missing just before it: record this first
    late: bool = False            # it fills (part of) a gap recorded earlier


@dataclass
class _Position:
    last: int = 0
    missing: list[list[int]] = field(default_factory=list)   # sorted, disjoint [first, last]

    def take(self, seq: int) -> bool:
        """Remove ``seq`` from the missing ranges; whether it was missing."""
        for i, (first, last) in enumerate(self.missing):
            if first <= seq <= last:
                self.missing[i:i + 1] = [r for r in ([first, seq - 1], [seq + 1, last])
                                         if r[0] <= r[1]]
                return True
        return False

    def add_missing(self, first: int, last: int) -> None:
        merged = []
        for r in sorted(self.missing + [[first, last]]):
            if merged and r[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(list(r))
        self.missing = merged


class Streams:
    """Where the audit stands in every stream: per (stream, epoch), the last recorded seq and the
    ranges still missing."""

    def __init__(self):
        self._at: dict[tuple[str, int], _Position] = {}

    def admit(self, where: StreamPosition) -> Admission:
        """Decide what to record for an arriving record, and remember that it is recorded."""
        if where.seq == 0:
            return Admission(record=True)
        position = self._at.setdefault((where.stream, where.epoch), _Position())
        if where.seq <= position.last:
            return (Admission(record=True, late=True) if position.take(where.seq)
                    else Admission(record=False))
        gap = None
        if where.seq > position.last + 1:
            gap = Gap(where.stream, where.epoch, position.last + 1, where.seq - 1)
            position.add_missing(gap.first, gap.last)
        position.last = where.seq
        return Admission(record=True, gap=gap)

    def note_gap(self, gap: Gap) -> None:
        """A GAP record read back from the ledger."""
        position = self._at.setdefault((gap.stream, gap.epoch), _Position())
        position.add_missing(gap.first, gap.last)
        position.last = max(position.last, gap.last)

    def replay(self, kind: str, body: dict) -> Admission | None:
        """Apply one ledger record as the live audit did; the admission a stream record gets now
        (record=False: it is in the ledger twice; a gap: nobody recorded that gap)."""
        if kind == RecordKind.GAP.value:
            self.note_gap(Gap.from_body(body))
            return None
        where = StreamPosition.of_record(kind, body)
        return self.admit(where) if where else None

    def position(self, stream: str, epoch: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        """(last recorded seq, still-missing ranges) of one stream's epoch."""
        p = self._at.get((stream, epoch), _Position())
        return p.last, tuple((a, b) for a, b in p.missing)

    def keys(self) -> list[tuple[str, int]]:
        return sorted(self._at)

    # -- persistence: a STREAMS record holds this state; the ledger after it replays onto it ----

    def snapshot(self) -> dict:
        return {'streams': [{'name': s, 'epoch': e, 'last': p.last,
                             'missing': [list(r) for r in p.missing]}
                            for (s, e), p in sorted(self._at.items())]}

    @classmethod
    def from_snapshot(cls, body: dict) -> 'Streams':
        """ValueError when the body is not a STREAMS snapshot."""
        streams = cls()
        try:
            for entry in body['streams']:
                missing = [[_number(a), _number(b)] for a, b in entry['missing']]
                streams._at[(_text(entry['name']), _number(entry['epoch']))] = _Position(
                    _number(entry['last']), missing)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f'malformed streams record: {exc}') from exc
        return streams

    @classmethod
    def from_ledger(cls, conn: sqlite3.Connection) -> 'Streams':
        """Where the ledger's records leave every stream: the newest STREAMS snapshot, and every
        record after it replayed (all of them if there is none, or it is malformed)."""
        streams, after = cls(), 0
        row = conn.execute('SELECT seq, body FROM records WHERE kind = ? ORDER BY seq DESC '
                           'LIMIT 1', (RecordKind.STREAMS.value,)).fetchone()
        if row is not None:
            try:
                streams, after = cls.from_snapshot(json.loads(row[1])), row[0]
            except ValueError as exc:
                log.error('streams record %d unreadable (%s); replaying the whole ledger',
                          row[0], exc)
        kinds = [k.value for k in (*STREAM_KINDS, RecordKind.GAP)]
        for seq, kind, text in conn.execute(
                f'SELECT seq, kind, body FROM records WHERE seq > ? AND kind IN '
                f'({",".join("?" * len(kinds))}) ORDER BY seq', (after, *kinds)):
            try:
                streams.replay(kind, json.loads(text))
            except ValueError as exc:
                log.error('record %d skipped while restoring stream positions: %s', seq, exc)
        return streams


def _number(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'epoch/seq: not a number >= 0: {value!r}')
    return value


def _text(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f'stream: not a stream name: {value!r}')
    return value


@dataclass(frozen=True)
class StreamCompleteness:
    """One stream's epoch as the ledger holds it."""

    stream: str
    epoch: int
    recorded: int                                # records of it in the ledger (counted once)
    last: int                                    # highest seq recorded or named by a gap
    missing: tuple[tuple[int, int], ...]         # still missing at the end (recorded or not)
    unrecorded: tuple[tuple[int, int], ...]      # missing ranges that no GAP record names
    duplicates: int                              # records in the ledger twice

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unrecorded or self.duplicates)

    def line(self) -> str:
        def ranges(rs):
            return ', '.join(f'{a}..{b}' if a != b else str(a) for a, b in rs)
        text = (f'{self.stream} epoch {self.epoch}: {self.recorded} records, last seq '
                f'{self.last}')
        if self.missing:
            text += (f'; MISSING {sum(b - a + 1 for a, b in self.missing)}: '
                     f'{ranges(self.missing)}')
        if self.unrecorded:
            text += f'; NO GAP RECORD for {ranges(self.unrecorded)}'
        if self.duplicates:
            text += f'; {self.duplicates} DUPLICATES'
        return text


@dataclass(frozen=True)
class Completeness:
    streams: tuple[StreamCompleteness, ...]
    gap_records: int
    unnumbered: int                              # stream records with seq 0 (not checkable)
    malformed: tuple[int, ...]                   # ledger seqs of records that do not parse

    @property
    def complete(self) -> bool:
        """Nothing missing, nothing doubled (a gap filled later by a late arrival is complete)."""
        return all(s.complete for s in self.streams) and not self.malformed

    @property
    def missing(self) -> int:
        return sum(b - a + 1 for s in self.streams for a, b in s.missing)

    def summary(self) -> str:
        head = ('COMPLETE' if self.complete else 'INCOMPLETE') + (
            f': {len(self.streams)} stream epochs, {self.gap_records} gap records, '
            f'{self.missing} records missing')
        if self.unnumbered:
            head += f', {self.unnumbered} unnumbered records (seq 0) not checked'
        if self.malformed:
            head += f', malformed records {list(self.malformed)}'
        return head


def check_completeness(conn: sqlite3.Connection) -> Completeness:
    """Replay the whole ledger: for every stream's epoch, what is missing and what is doubled."""
    streams = Streams()
    recorded: dict[tuple[str, int], int] = {}
    unrecorded: dict[tuple[str, int], list[tuple[int, int]]] = {}
    duplicates: dict[tuple[str, int], int] = {}
    gap_records, unnumbered, malformed = 0, 0, []
    kinds = [k.value for k in (*STREAM_KINDS, RecordKind.GAP)]
    for seq, kind, text in conn.execute(
            f'SELECT seq, kind, body FROM records WHERE kind IN ({",".join("?" * len(kinds))}) '
            'ORDER BY seq', kinds):
        try:
            body = json.loads(text)
        except ValueError:
            malformed.append(seq)
            continue
        if kind == RecordKind.GAP.value:
            gap_records += 1
            try:
                streams.note_gap(Gap.from_body(body))
            except ValueError:
                malformed.append(seq)
            continue
        where = StreamPosition.of_record(kind, body)
        if where is None:
            continue
        if where.seq == 0:
            unnumbered += 1
            continue
        key = (where.stream, where.epoch)
        admission = streams.admit(where)
        if not admission.record:
            duplicates[key] = duplicates.get(key, 0) + 1
            continue
        recorded[key] = recorded.get(key, 0) + 1
        if admission.gap is not None:
            unrecorded.setdefault(key, []).append((admission.gap.first, admission.gap.last))
    found = []
    for key in streams.keys():
        last, missing = streams.position(*key)
        found.append(StreamCompleteness(key[0], key[1], recorded.get(key, 0), last, missing,
                                        tuple(unrecorded.get(key, ())), duplicates.get(key, 0)))
    return Completeness(tuple(found), gap_records, unnumbered, tuple(malformed))
