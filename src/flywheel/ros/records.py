"""Messages the audit node hears, as the plain, JSON-ready records the ledger stores.

A record keeps what was received, all of it: an enum value outside the contract is kept as its
number (a name for every known one), so a peer's mistake is on the record instead of dropping it.
The stream position (epoch, seq) is not part of these bodies: the audit trail adds it.
"""
from __future__ import annotations

from alignment_flywheel.msg import GateDecision, GovernanceEvent, Incident
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.audit.governance_event import event_name
from flywheel.audit.incident import IncidentReport
from flywheel.audit.sequence import StreamPosition
from flywheel.enforcement.decision import Action, Reason, Subject
from flywheel.ros.answer_msgs import answer_record
from flywheel.ros.convert import from_time


def _name(enum, value: int) -> str | int:
    try:
        return enum(value).name
    except ValueError:
        return int(value)


def position(stream: str, msg: GateDecision | GovernanceEvent) -> StreamPosition:
    return StreamPosition(stream, msg.epoch, msg.seq)


def decision_record(msg: GateDecision) -> dict:
    """Every field of a GateDecision but its stream position, with the verdict it embeds."""
    return {
        'subject': _name(Subject, msg.subject),
        'proposal_id': msg.proposal_id, 'proposer_id': msg.proposer_id,
        'proposal_digest': msg.proposal_digest, 'action': _name(Action, msg.action),
        'reasons': [_name(Reason, r) for r in msg.reasons], 'details': list(msg.details),
        'oracle_version': msg.oracle_version, 'policy_version': msg.policy_version,
        'command': ([msg.command.linear.x, msg.command.angular.z] if msg.command_published
                    else None),
        'latency_s': from_time(msg.latency) * 1e-9,
        'signals': signals_record(msg.signals[0]) if len(msg.signals) else None,
        # a canary decision also applied the candidate's verdict: both, each with its action
        **({'candidate_signals': signals_record(msg.signals[1]),
            'signal_actions': [_name(Action, a) for a in msg.signal_actions]}
           if len(msg.signals) > 1 else {}),
        # a VERIFICATION record: the verifier's answer, as signed
        **({'answer': answer_record(msg.answer[0])} if len(msg.answer) else {}),
    }


def signals_record(msg: SignalsMsg) -> dict:
    """Every field of a verdict, the signature as hex: enough to verify it again offline."""
    return {
        'stamp_ns': from_time(msg.header.stamp), 'frame_id': msg.header.frame_id,
        'proposal_id': msg.proposal_id, 'proposal_digest': msg.proposal_digest,
        'oracle_version': msg.oracle_version, 'overlay_version': msg.overlay_version,
        'epoch': msg.epoch, 'seq': msg.seq, 'safety_score': msg.safety_score,
        'collision_risk': msg.collision_risk, 'constraint_risk': msg.constraint_risk,
        'min_clearance': msg.min_clearance, 'time_to_collision': msg.time_to_collision,
        'prediction_uncertainty': msg.prediction_uncertainty,
        'prediction_uncertainty_threshold': msg.prediction_uncertainty_threshold,
        'coverage_uncertainty': msg.coverage_uncertainty,
        'coverage_uncertainty_threshold': msg.coverage_uncertainty_threshold,
        'scored_hold': msg.scored_hold, 'anchor_tolerance': msg.anchor_tolerance,
        'anchor_yaw_tolerance': msg.anchor_yaw_tolerance,
        'evidence_status': msg.evidence_status,
        'evidence': [{'rule_id': e.rule_id, 'kind': e.kind, 'value': e.value,
                      'x': e.location.x, 'y': e.location.y} for e in msg.evidence],
        'evaluation_ns': from_time(msg.evaluation_duration),
        'key_id': msg.key_id, 'signature': bytes(msg.signature).hex(),
    }


def governance_record(msg: GovernanceEvent) -> dict:
    """Every field of a GovernanceEvent but its stream position."""
    return {'event': event_name(msg.event), 'number': msg.number,
            'oracle_version': msg.oracle_version, 'previous_version': msg.previous_version,
            'bundle_sha256': msg.bundle_sha256, 'reason': msg.reason, 'actor': msg.actor}


def incident_report(msg: Incident, now_ns: int) -> IncidentReport:
    """A zero stamp means now."""
    stamp = from_time(msg.header.stamp) or now_ns
    return IncidentReport(stamp, msg.header.frame_id, msg.severity, msg.position.x,
                          msg.position.y, msg.object_id, msg.distance, msg.reporter,
                          msg.description, tuple(msg.linked_proposal_ids))
