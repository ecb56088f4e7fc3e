"""Which release directive from governance an Oracle may apply (the active release and, during a
staged rollout, the candidate).

The Oracle verifies every release itself; these rules keep a *valid* but superseded release out:
directives apply in the order governance issued them ((epoch, seq) strictly increasing, a restarted
governance having a newer epoch), and the release number never goes down except on an explicit
rollback directive. Verification runs on one worker thread, one directive at a time, and only the
newest pending directive is kept, so a slow verification finishing late cannot overtake a newer one.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

_MAGIC = b'flywheel.oracle_release.v1\0'


@dataclass(frozen=True)
class Directive:
    """msg/OracleRelease in plain data. Governance signs ``canonical_bytes``."""

    epoch: int
    seq: int
    number: int
    oracle_version: str
    rollback: bool
    bundle: bytes
    root: bytes
    candidate_version: str = ''
    candidate_number: int = 0
    candidate_bundle: bytes = b''
    candidate_root: bytes = b''
    key_id: str = ''
    signature: bytes = b''

    def canonical_bytes(self) -> bytes:
        version = self.oracle_version.encode('utf-8')
        candidate = self.candidate_version.encode('utf-8')
        return b''.join([_MAGIC, struct.pack('<QQQ?I', self.epoch, self.seq, self.number,
                                             self.rollback, len(version)), version,
                         hashlib.sha256(self.bundle).digest(),
                         hashlib.sha256(self.root).digest(),
                         struct.pack('<QI', self.candidate_number, len(candidate)), candidate,
                         hashlib.sha256(self.candidate_bundle).digest(),
                         hashlib.sha256(self.candidate_root).digest()])


def directive_problem(d: Directive, last_applied: tuple[int, int] | None,
                      running_number: int) -> str | None:
    """Why ``d`` must not be applied (None when it may be verified and applied)."""
    if last_applied is not None and (d.epoch, d.seq) <= last_applied:
        return (f'directive ({d.epoch}, {d.seq}) is not newer than the one applied '
                f'{last_applied} (replayed or out of order)')
    if d.number < running_number and not d.rollback:
        return (f'release {d.number} is older than the running release {running_number} and '
                'the directive is not a rollback')
    if d.candidate_number and d.candidate_number <= d.number:
        return (f'candidate release {d.candidate_number} is not newer than the active release '
                f'{d.number}')
    return None


def running_bytes(epoch: int, seq: int, active_version: str, active_number: int,
                  candidate_version: str, candidate_number: int) -> bytes:
    """What the Oracle signs when it reports what it runs (msg/OracleRunning): governance believes
    a swap, or a candidate loaded, only from a report signed by an Oracle key."""
    texts = [t.encode('utf-8') for t in (active_version, candidate_version)]
    return b''.join([b'flywheel.oracle_running.v1\0',
                     struct.pack('<QQQQII', epoch, seq, active_number, candidate_number,
                                 *(len(t) for t in texts)), *texts])
