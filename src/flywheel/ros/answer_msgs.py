"""VerifierAnswer <-> msg/VerifierAnswer, and the answer as the audit records it. Pure
translation: every field as it is, non-finite numbers included (answer_problem judges them)."""
from __future__ import annotations

from alignment_flywheel.msg import VerifierAnswer as AnswerMsg
from flywheel.ros.convert import from_time, to_duration, to_time
from flywheel.verifier_answer import VerifierAnswer


def answer_to_msg(a: VerifierAnswer) -> AnswerMsg:
    msg = AnswerMsg(epoch=a.epoch, seq=a.seq, proposal_digest=a.proposal_digest,
                    oracle_version=a.oracle_version, safe=a.safe, reason=a.reason,
                    detail=a.detail, min_clearance=a.min_clearance, x=a.x, y=a.y, hold=a.hold,
                    key_id=a.key_id, signature=list(a.signature))
    msg.region = [float(v) for v in a.region]
    msg.stamp = to_time(a.stamp_ns)
    msg.elapsed = to_duration(max(0, a.elapsed_ns))
    return msg


def answer_from_msg(msg: AnswerMsg) -> VerifierAnswer:
    return VerifierAnswer(msg.proposal_digest, msg.oracle_version, bool(msg.safe), msg.reason,
                          msg.detail, msg.min_clearance, msg.x, msg.y, msg.hold,
                          tuple(float(v) for v in msg.region), from_time(msg.stamp), msg.epoch,
                          msg.seq, from_time(msg.elapsed), msg.key_id, bytes(msg.signature))


def answer_record(msg: AnswerMsg) -> dict:
    """Every field, the signature as hex: enough to verify it again offline."""
    return {'stamp_ns': from_time(msg.stamp), 'epoch': msg.epoch, 'seq': msg.seq,
            'proposal_digest': msg.proposal_digest, 'oracle_version': msg.oracle_version,
            'safe': bool(msg.safe), 'reason': msg.reason, 'detail': msg.detail,
            'min_clearance': msg.min_clearance, 'x': msg.x, 'y': msg.y, 'hold': msg.hold,
            'region': [float(v) for v in msg.region],
            'elapsed_ns': from_time(msg.elapsed), 'key_id': msg.key_id,
            'signature': bytes(msg.signature).hex()}
