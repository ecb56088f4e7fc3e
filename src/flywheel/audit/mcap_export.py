"""Export a ledger as an MCAP flight record of ROS 2 messages (Foxglove opens it): every
GateDecision on /gate_decisions (proposals' decisions and ignored verdicts, each with the verdict it
embeds), /incidents, GovernanceEvents on /governance/events (release events and the governance
node's lifecycle transitions), with the Oracle release hashes, the ledger's verification and its
GAP records as metadata.

Records written before the message contract had epochs, sequence numbers and embedded verdicts
export with those fields zero; the messages are rebuilt from records, so nothing the ledger does not
hold is invented.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from mcap_ros2.writer import Writer

from flywheel.audit.governance_event import event_code
from flywheel.audit.incident import Severity
from flywheel.audit.msgdef import full_text
from flywheel.audit.record import RecordKind
from flywheel.audit.verify import VerifyReport, gap_text
from flywheel.enforcement.decision import Action, Reason, Subject

PACKAGE = 'alignment_flywheel'
DECISIONS, INCIDENTS, GOVERNANCE = '/gate_decisions', '/incidents', '/governance/events'
_SIGNAL_FIELDS = {   # field: value in records made before it existed
    'proposal_id': '', 'proposal_digest': '', 'oracle_version': '', 'overlay_version': '',
    'epoch': 0, 'seq': 0, 'safety_score': 0.0, 'collision_risk': 0.0, 'constraint_risk': 0.0,
    'min_clearance': 0.0, 'time_to_collision': 0.0, 'prediction_uncertainty': 0.0,
    'prediction_uncertainty_threshold': 0.0, 'coverage_uncertainty': 0.0,
    'coverage_uncertainty_threshold': 0.0, 'scored_hold': 0.0, 'anchor_tolerance': 0.0,
    'anchor_yaw_tolerance': 0.0, 'evidence_status': 0, 'key_id': ''}
_EVENT_FIELDS = {'number': 0, 'oracle_version': '', 'previous_version': '', 'bundle_sha256': '',
                 'reason': '', 'actor': ''}


def _stamp(ns: int) -> dict:
    return {'sec': ns // 1_000_000_000, 'nanosec': ns % 1_000_000_000}


def _header(ns: int, frame_id: str = '') -> dict:
    return {'stamp': _stamp(ns), 'frame_id': frame_id}


def _twist(command) -> dict:
    v, w = command or (0.0, 0.0)
    return {'linear': {'x': v, 'y': 0.0, 'z': 0.0}, 'angular': {'x': 0.0, 'y': 0.0, 'z': w}}


def _epoch_seq(body: dict) -> dict:
    where = body.get('stream', {})
    return {'epoch': where.get('epoch', 0), 'seq': where.get('seq', 0)}


def _code(enum, value) -> int:
    """A recorded enum name back to its message constant; a number recorded as received stays."""
    return value if isinstance(value, int) else int(enum[value])


def decision_message(body: dict, stamp_ns: int) -> dict:
    latency = max(0, round(body.get('latency_s', 0.0) * 1e9))
    return {'header': _header(stamp_ns),
            'subject': _code(Subject, body.get('subject', Subject.PROPOSAL.name)),
            **_epoch_seq(body), 'proposal_id': body['proposal_id'],
            'proposer_id': body['proposer_id'],
            'proposal_digest': body['proposal_digest'], 'action': _code(Action, body['action']),
            'reasons': [_code(Reason, r) for r in body['reasons']], 'details': body['details'],
            'oracle_version': body['oracle_version'], 'policy_version': body['policy_version'],
            'command': _twist(body['command']), 'command_published': body['command'] is not None,
            'latency': _stamp(latency),
            'signals': [signals_message(body['proposal_id'], body['signals'])]
            if body.get('signals') else []}


def signals_message(proposal_id: str, s: dict) -> dict:
    return {'header': _header(s['stamp_ns'], s.get('frame_id', '')),
            **{k: s.get(k, default) for k, default in _SIGNAL_FIELDS.items()},
            'proposal_id': s.get('proposal_id', proposal_id),
            'evidence': [{'rule_id': e['rule_id'], 'kind': e['kind'], 'value': e['value'],
                          'location': {'x': e['x'], 'y': e['y'], 'z': 0.0}}
                         for e in s['evidence']],
            'evaluation_duration': _stamp(s.get('evaluation_ns', 0)),
            'signature': bytes.fromhex(s.get('signature', ''))}


def incident_message(body: dict, stamp_ns: int) -> dict:
    return {'header': _header(stamp_ns, body['frame_id']), 'incident_id': body['incident_id'],
            'severity': int(Severity[body['severity']]),
            'position': {'x': body['x'], 'y': body['y'], 'z': 0.0},
            'object_id': body['object_id'], 'distance': body['distance'],
            'reporter': body['reporter'], 'description': body['description'],
            'linked_proposal_ids': body['linked_proposal_ids']}


def governance_message(body: dict, stamp_ns: int) -> dict:
    return {'header': _header(stamp_ns), 'event': event_code(body['event']), **_epoch_seq(body),
            **{k: body.get(k, default) for k, default in _EVENT_FIELDS.items()}}


def export_mcap(conn: sqlite3.Connection, out: Path, report: VerifyReport) -> dict[str, int]:
    """Write every record as a message; returns messages written per topic."""
    counts = {DECISIONS: 0, INCIDENTS: 0, GOVERNANCE: 0}
    releases: dict[str, str] = {}
    with open(out, 'wb') as stream:
        writer = Writer(stream)
        schemas = {name: writer.register_msgdef(f'{PACKAGE}/msg/{name}', full_text(PACKAGE, name))
                   for name in ('GateDecision', 'Incident', 'GovernanceEvent')}

        def put(topic: str, schema: str, message: dict, stamp_ns: int) -> None:
            writer.write_message(topic, schemas[schema], message, log_time=stamp_ns,
                                 publish_time=stamp_ns, sequence=counts[topic])
            counts[topic] += 1

        for stamp_ns, kind, text in conn.execute(
                'SELECT stamp_ns, kind, body FROM records ORDER BY seq'):
            body = json.loads(text)
            if kind in (RecordKind.DECISION.value, RecordKind.IGNORED_VERDICT.value):
                put(DECISIONS, 'GateDecision', decision_message(body, stamp_ns), stamp_ns)
            elif kind == RecordKind.INCIDENT.value:
                put(INCIDENTS, 'Incident', incident_message(body, stamp_ns), stamp_ns)
            elif kind == RecordKind.RELEASE.value or (
                    kind == RecordKind.LIFECYCLE.value and 'stream' in body):
                put(GOVERNANCE, 'GovernanceEvent', governance_message(body, stamp_ns), stamp_ns)
                if body.get('bundle_sha256'):
                    releases[body['oracle_version']] = body['bundle_sha256']
        writer.add_metadata('oracle_releases', releases)
        writer.add_metadata('ledger', {
            'records': str(report.records), 'verified': 'ok' if report.ok else 'TAMPERED',
            'summary': report.summary(), 'signed_through': str(report.signed_through),
            'key_id': report.key_id, 'gap_records': str(len(report.gaps)),
            'missing_stream_records': str(report.missing)})
        writer.add_metadata('gaps', {str(g['seq']): gap_text(g) for g in report.gaps})
        writer.finish()
    return counts
