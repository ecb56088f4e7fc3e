"""OracleStatus: what governance tells the Gate (and operators) about the Oracle releases.

Governance signs ``canonical_bytes``; a Gate believes a status only if it verifies, is newer
(epoch, seq) than the last one it believed, and is fresh on the wall clock, so neither a forged
nor a replayed status can change which Oracle versions count.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

_MAGIC = b'flywheel.oracle_status.v1\0'


@dataclass(frozen=True)
class OracleStatus:
    epoch: int
    seq: int
    stamp_ns: int                       # wall clock
    state: str
    active_version: str
    active_number: int
    previous_version: str
    previous_number: int
    installed_max: int
    oracle_running: str
    accepted_versions: tuple[str, ...]
    root_version: int
    root: bytes
    last_rejection: str
    candidate_version: str = ''          # a release on trial (staged rollout)
    candidate_number: int = 0
    stage: int = 0                       # STAGE_NONE, STAGE_SHADOW, STAGE_CANARY
    rollout: str = ''                    # the rollout in words
    key_id: str = ''
    signature: bytes = b''

    def canonical_bytes(self) -> bytes:
        parts = [_MAGIC, struct.pack('<QQq', self.epoch, self.seq, self.stamp_ns)]
        for text in (self.state, self.active_version, self.previous_version, self.oracle_running,
                     self.last_rejection, self.candidate_version, self.rollout):
            _put(parts, text.encode('utf-8'))
        parts.append(struct.pack('<QQQQBII', self.active_number, self.previous_number,
                                 self.installed_max, self.candidate_number, self.stage,
                                 self.root_version, len(self.accepted_versions)))
        for version in self.accepted_versions:
            _put(parts, version.encode('utf-8'))
        _put(parts, self.root)
        return b''.join(parts)


def status_problem(status: OracleStatus, last: tuple[int, int] | None, now_wall_ns: int,
                   max_age_ns: int, max_skew_ns: int) -> str | None:
    """Why this (authenticated) status must not be believed now; None when it may."""
    if last is not None and (status.epoch, status.seq) <= last:
        return f'status ({status.epoch}, {status.seq}) is not newer than {last} (replayed)'
    age = now_wall_ns - status.stamp_ns
    if age > max_age_ns:
        return f'status stamped {age * 1e-9:.1f}s ago (stale or replayed)'
    if -age > max_skew_ns or status.epoch > now_wall_ns + max_skew_ns:
        return 'status stamped in the future'
    return None


def _put(parts: list, raw: bytes) -> None:
    parts.append(struct.pack('<I', len(raw)) + raw)
