"""Messages the audit node hears, as the plain, JSON-ready records the ledger stores."""
from __future__ import annotations

from alignment_flywheel.msg import GateDecision, GovernanceEvent, Incident
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.audit.incident import IncidentReport
from flywheel.enforcement.decision import Action, Reason
from flywheel.ros.convert import from_time


def decision_record(msg: GateDecision) -> dict:
    return {
        'proposal_id': msg.proposal_id, 'proposer_id': msg.proposer_id,
        'proposal_digest': msg.proposal_digest, 'action': Action(msg.action).name,
        'reasons': [Reason(r).name for r in msg.reasons], 'details': list(msg.details),
        'oracle_version': msg.oracle_version, 'policy_version': msg.policy_version,
        'command': ([msg.command.linear.x, msg.command.angular.z] if msg.command_published
                    else None),
        'latency_s': from_time(msg.latency) * 1e-9,
    }


def signals_record(msg: SignalsMsg) -> dict:
    return {
        'proposal_digest': msg.proposal_digest, 'oracle_version': msg.oracle_version,
        'overlay_version': msg.overlay_version, 'safety_score': msg.safety_score,
        'collision_risk': msg.collision_risk, 'constraint_risk': msg.constraint_risk,
        'min_clearance': msg.min_clearance, 'time_to_collision': msg.time_to_collision,
        'prediction_uncertainty': msg.prediction_uncertainty,
        'prediction_uncertainty_threshold': msg.prediction_uncertainty_threshold,
        'coverage_uncertainty': msg.coverage_uncertainty,
        'coverage_uncertainty_threshold': msg.coverage_uncertainty_threshold,
        'evidence_status': msg.evidence_status,
        'evidence': [{'rule_id': e.rule_id, 'kind': e.kind, 'value': e.value,
                      'x': e.location.x, 'y': e.location.y} for e in msg.evidence],
        'stamp_ns': from_time(msg.header.stamp),
    }


def incident_report(msg: Incident, now_ns: int) -> IncidentReport:
    """A zero stamp means now."""
    stamp = from_time(msg.header.stamp) or now_ns
    return IncidentReport(stamp, msg.header.frame_id, msg.severity, msg.position.x,
                          msg.position.y, msg.object_id, msg.distance, msg.reporter,
                          msg.description, tuple(msg.linked_proposal_ids))


_RELEASE_EVENTS = {
    GovernanceEvent.EVENT_SUBMITTED: 'submitted', GovernanceEvent.EVENT_VERIFIED: 'verified',
    GovernanceEvent.EVENT_REJECTED: 'rejected', GovernanceEvent.EVENT_INSTALLED: 'installed',
    GovernanceEvent.EVENT_ROLLED_BACK: 'rolled_back'}


def release_record(msg: GovernanceEvent) -> dict:
    """Raises KeyError on an event outside the contract."""
    return {'event': _RELEASE_EVENTS[msg.event], 'oracle_version': msg.oracle_version,
            'previous_version': msg.previous_version, 'bundle_sha256': msg.bundle_sha256,
            'reason': msg.reason, 'actor': msg.actor}
