"""A ledger Record and its canonical encoding.

hash(record k) = sha256(hash(record k-1) || canonical(record k)), with 32 zero bytes before the
first record. canonical() is JSON with sorted keys and no spaces (Python's json, which also writes
Infinity and NaN), so equal records encode to equal bytes on every machine.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = '0' * 64


class RecordKind(str, enum.Enum):
    """What a record is. Records of a sequenced stream (decisions, ignored verdicts, governance
    events) carry ``stream``, ``epoch`` and ``seq`` in their body (flywheel.audit.sequence)."""

    DECISION = 'decision'                # a GateDecision of subject PROPOSAL, with its verdict
    IGNORED_VERDICT = 'ignored_verdict'  # a GateDecision of subject VERDICT: a verdict ignored
    SHADOW = 'shadow'                    # a candidate's verdict in a shadow rollout, not enforced
    INCIDENT = 'incident'
    RELEASE = 'release'                  # a GovernanceEvent about a release
    LIFECYCLE = 'lifecycle'              # the audit's own start/stop; governance's transitions
    GAP = 'gap'                          # records of a stream that never reached the audit
    STREAMS = 'streams'                  # the audit's position in every stream (a restart reads it)
    SEGMENT = 'segment'                  # a new chain segment anchored to the last good record
    PARAMETER = 'parameter'              # a live parameter change of a running node


def canonical_body(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def canonical_record(seq: int, stamp_ns: int, kind: str, body_text: str) -> bytes:
    """The hashed bytes of a record, built around the stored canonical body text."""
    return (f'{{"body":{body_text},"kind":{json.dumps(kind)},"seq":{int(seq)},'
            f'"stamp_ns":{int(stamp_ns)}}}').encode('utf-8')


def chain_hash(prev_hash: str, seq: int, stamp_ns: int, kind: str, body_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash)
                          + canonical_record(seq, stamp_ns, kind, body_text)).hexdigest()


@dataclass(frozen=True)
class Record:
    seq: int
    stamp_ns: int
    kind: str
    body: dict
    prev_hash: str
    hash: str
