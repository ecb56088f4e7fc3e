"""VerifierAnswer: the verifier's signed answer about one escalated proposal (msg/VerifierAnswer).

The verifier core (flywheel.verify.verifier) computes a Verification; the verifier node numbers,
stamps and signs it as a VerifierAnswer. ``canonical_bytes`` covers every field anyone decides on
(all of them but the time the check took and the signature itself): the verifier signs it, the
Gate verifies it before the answer can release anything, and governance verifies it again before
a safe answer can raise the coverage overlay. ``answer_problem`` names anything in an answer that
no honest verifier would send (it is checked before any other use).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

# srv/Verify.srv: uint8[<=131072] proposal. A Proposal within every bound of its message (1,000
# points of 112 bytes, ids, frame, signature) is about 113 KB.
MAX_PROPOSAL_BYTES = 131072
MAX_TEXT = 64            # proposal_digest, oracle_version, key_id
MAX_DETAIL = 256
SAFE = 0                 # VerifierAnswer.REASON_SAFE (flywheel.verify.verifier.VerifyReason.SAFE)

_MAGIC = b'flywheel.verifier_answer.v1\0'


@dataclass(frozen=True)
class VerifierAnswer:
    """See msg/VerifierAnswer.msg for every field. ``region`` is (xmin, ymin, xmax, ymax)."""

    proposal_digest: str
    oracle_version: str
    safe: bool
    reason: int
    detail: str
    min_clearance: float
    x: float
    y: float
    hold: float
    region: tuple[float, float, float, float]
    stamp_ns: int
    epoch: int
    seq: int
    elapsed_ns: int = 0
    key_id: str = ''
    signature: bytes = b''

    def canonical_bytes(self) -> bytes:
        """A byte encoding identical for equal answers on every machine (floats as IEEE 754)."""
        parts = [_MAGIC]
        for text in (self.proposal_digest, self.oracle_version, self.detail):
            raw = text.encode('utf-8')
            parts.append(struct.pack('<I', len(raw)) + raw)
        parts.append(struct.pack('<qQQ?B8d', self.stamp_ns, self.epoch, self.seq, self.safe,
                                 self.reason, self.min_clearance, self.x, self.y, self.hold,
                                 *self.region))
        return b''.join(parts)


def answer_problem(answer: VerifierAnswer) -> str | None:
    """Why this answer is not one an honest verifier sends (None when it could be). An unsafe
    answer may leave where, clearance and region unknown (NaN: nothing was checked); a safe one
    must say all of them."""
    for name in ('proposal_digest', 'oracle_version', 'key_id'):
        if len(getattr(answer, name)) > MAX_TEXT:
            return f'{name}: longer than {MAX_TEXT} characters'
    if len(answer.detail) > MAX_DETAIL:
        return f'detail: longer than {MAX_DETAIL} characters'
    if answer.safe != (answer.reason == SAFE):
        return f'safe={answer.safe} with reason {answer.reason}'
    if len(answer.region) != 4:
        return f'region {answer.region!r}: four numbers expected'
    if not answer.safe:
        return None
    if not all(math.isfinite(v) for v in answer.region):
        return f'region {answer.region!r}: not finite'
    xmin, ymin, xmax, ymax = answer.region
    if xmin > xmax or ymin > ymax:
        return f'region {answer.region!r}: min above max'
    if not (math.isfinite(answer.x) and math.isfinite(answer.y)):
        return f'where ({answer.x}, {answer.y}): not finite'
    if not (math.isfinite(answer.hold) and answer.hold > 0.0):
        return f'hold {answer.hold}: not a duration'
    if math.isnan(answer.min_clearance) or answer.min_clearance < 0.0:
        return f'min_clearance {answer.min_clearance}: not a distance'
    return None
