"""Reading records back: filters an auditor asks for (time, kind, action, release, proposer)."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from flywheel.audit.keys import load_public_key
from flywheel.errors import LedgerError


@dataclass(frozen=True)
class Query:
    kind: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    action: str | None = None
    release: str | None = None       # oracle version
    proposer: str | None = None
    limit: int | None = None

    def matches(self, body: dict) -> bool:
        return ((self.action is None or body.get('action') == self.action)
                and (self.release is None or body.get('oracle_version') == self.release)
                and (self.proposer is None or body.get('proposer_id') == self.proposer))


def records(conn: sqlite3.Connection, q: Query) -> Iterator[dict]:
    sql, args = 'SELECT seq, stamp_ns, kind, body FROM records WHERE 1=1', []
    for clause, value in (('kind = ?', q.kind), ('stamp_ns >= ?', q.since_ns),
                          ('stamp_ns <= ?', q.until_ns)):
        if value is not None:
            sql += f' AND {clause}'
            args.append(value)
    returned = 0
    for seq, stamp_ns, kind, text in conn.execute(sql + ' ORDER BY seq', args):
        body = json.loads(text)
        if q.matches(body):
            yield {'seq': seq, 'stamp_ns': stamp_ns, 'kind': kind, **body}
            returned += 1
            if q.limit is not None and returned >= q.limit:
                return


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch from an integer or an ISO 8601 time (UTC if no zone)."""
    if text.lstrip('-').isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f'not a time: {text!r} (use ISO 8601 or nanoseconds)') from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1e9)


def stored_public_key(conn: sqlite3.Connection):
    row = conn.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
    if row is None:
        raise LedgerError('the ledger holds no public key; pass --key')
    return load_public_key(row[0].encode())
