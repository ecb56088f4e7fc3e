"""Export a ledger as an MCAP flight record of ROS 2 messages (Foxglove opens it): decisions on
/gate_decisions, the signals behind them on /safety_signals, /incidents, /release_events, with the
Oracle release hashes and the ledger's verification as metadata."""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from mcap_ros2.writer import Writer

from flywheel.audit.incident import Severity
from flywheel.audit.msgdef import full_text
from flywheel.audit.record import RecordKind
from flywheel.audit.verify import VerifyReport
from flywheel.enforcement.decision import Action, Reason

PACKAGE = 'alignment_flywheel'
RELEASE_EVENTS = ['submitted', 'verified', 'rejected', 'installed', 'rolled_back']


def _stamp(ns: int) -> dict:
    return {'sec': ns // 1_000_000_000, 'nanosec': ns % 1_000_000_000}


def _header(ns: int, frame_id: str = '') -> dict:
    return {'stamp': _stamp(ns), 'frame_id': frame_id}


def _twist(command) -> dict:
    v, w = command or (0.0, 0.0)
    return {'linear': {'x': v, 'y': 0.0, 'z': 0.0}, 'angular': {'x': 0.0, 'y': 0.0, 'z': w}}


def decision_message(body: dict, stamp_ns: int) -> dict:
    latency = max(0, round(body.get('latency_s', 0.0) * 1e9))
    return {'header': _header(stamp_ns), 'proposal_id': body['proposal_id'],
            'proposer_id': body['proposer_id'], 'proposal_digest': body['proposal_digest'],
            'action': int(Action[body['action']]),
            'reasons': [int(Reason[r]) for r in body['reasons']], 'details': body['details'],
            'oracle_version': body['oracle_version'], 'policy_version': body['policy_version'],
            'command': _twist(body['command']), 'command_published': body['command'] is not None,
            'latency': _stamp(latency)}


def signals_message(proposal_id: str, s: dict) -> dict:
    return {'header': _header(s['stamp_ns']), 'proposal_id': proposal_id,
            **{k: s[k] for k in (
                'proposal_digest', 'oracle_version', 'overlay_version', 'safety_score',
                'collision_risk', 'constraint_risk', 'min_clearance', 'time_to_collision',
                'prediction_uncertainty', 'prediction_uncertainty_threshold',
                'coverage_uncertainty', 'coverage_uncertainty_threshold', 'evidence_status')},
            'evidence': [{'rule_id': e['rule_id'], 'kind': e['kind'], 'value': e['value'],
                          'location': {'x': _finite(e['x']), 'y': _finite(e['y']), 'z': 0.0}}
                         for e in s['evidence']],
            'evaluation_duration': _stamp(0)}


def incident_message(body: dict, stamp_ns: int) -> dict:
    return {'header': _header(stamp_ns, body['frame_id']), 'incident_id': body['incident_id'],
            'severity': int(Severity[body['severity']]),
            'position': {'x': body['x'], 'y': body['y'], 'z': 0.0},
            'object_id': body['object_id'], 'distance': body['distance'],
            'reporter': body['reporter'], 'description': body['description'],
            'linked_proposal_ids': body['linked_proposal_ids']}


def release_message(body: dict, stamp_ns: int) -> dict:
    return {'header': _header(stamp_ns), 'event': RELEASE_EVENTS.index(body['event']),
            **{k: body[k] for k in ('oracle_version', 'previous_version', 'bundle_sha256',
                                    'reason', 'actor')}}


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0


def export_mcap(conn: sqlite3.Connection, out: Path, report: VerifyReport) -> dict[str, int]:
    """Write every record as a message; returns messages written per topic."""
    counts = {'/gate_decisions': 0, '/safety_signals': 0, '/incidents': 0, '/release_events': 0}
    releases: dict[str, str] = {}
    with open(out, 'wb') as stream:
        writer = Writer(stream)
        schemas = {name: writer.register_msgdef(f'{PACKAGE}/msg/{name}', full_text(PACKAGE, name))
                   for name in ('GateDecision', 'SafetySignals', 'Incident', 'ReleaseEvent')}

        def put(topic: str, schema: str, message: dict, stamp_ns: int) -> None:
            writer.write_message(topic, schemas[schema], message, log_time=stamp_ns,
                                 publish_time=stamp_ns, sequence=counts[topic])
            counts[topic] += 1

        for stamp_ns, kind, text in conn.execute(
                'SELECT stamp_ns, kind, body FROM records ORDER BY seq'):
            body = json.loads(text)
            if kind == RecordKind.DECISION.value:
                if body.get('signals'):
                    put('/safety_signals', 'SafetySignals',
                        signals_message(body['proposal_id'], body['signals']),
                        body['signals']['stamp_ns'])
                put('/gate_decisions', 'GateDecision', decision_message(body, stamp_ns), stamp_ns)
            elif kind == RecordKind.INCIDENT.value:
                put('/incidents', 'Incident', incident_message(body, stamp_ns), stamp_ns)
            elif kind == RecordKind.RELEASE.value:
                put('/release_events', 'ReleaseEvent', release_message(body, stamp_ns), stamp_ns)
                if body['bundle_sha256']:
                    releases[body['oracle_version']] = body['bundle_sha256']
        writer.add_metadata('oracle_releases', releases)
        writer.add_metadata('ledger', {
            'records': str(report.records), 'verified': 'ok' if report.ok else 'TAMPERED',
            'summary': report.summary(), 'signed_through': str(report.signed_through),
            'key_id': report.key_id})
        writer.finish()
    return counts
