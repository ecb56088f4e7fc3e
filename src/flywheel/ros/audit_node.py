"""audit_node: writes every gate decision (with the signals behind it), release event and incident
to the signed, hash-chained ledger, and takes incident reports (service report_incident)."""
from __future__ import annotations

import os
from pathlib import Path

from lifecycle_msgs.msg import TransitionEvent
from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, Incident, GovernanceEvent
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.config import AuditConfig
from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger
from flywheel.audit.trail import AuditTrail
from flywheel.errors import IncidentError
from flywheel.ros import qos, topics
from flywheel.ros.convert import from_time
from flywheel.ros.records import (decision_record, incident_report, release_record,
                                  signals_record)
from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node


class AuditNode(Node):
    def __init__(self, **kwargs):
        super().__init__('audit', **kwargs)
        self.config = config = declare_config(self, AuditConfig)
        ros_home = Path(os.environ.get('ROS_HOME', Path.home() / '.ros'))
        ledger_file = config.ledger_file(ros_home)
        ledger = Ledger(ledger_file, load_or_create_key(config.key_file(ros_home)),
                        config.commit_interval, now_ns=self.now_ns)
        self.trail = AuditTrail(ledger, config.frame_id, config.link_window)
        self.trail.lifecycle('started', self.now_ns(), node=self.get_fully_qualified_name())
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.STREAM)
        self.create_subscription(SignalsMsg, topics.SAFETY_SIGNALS, self.on_signals, qos.STREAM)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        self.create_subscription(GovernanceEvent, topics.GOVERNANCE_EVENTS, self.on_release, qos.STREAM)
        self.create_service(ReportIncident, topics.REPORT_INCIDENT, self.on_report)
        # lifecycle nodes announce every transition on <node>/transition_event
        self.create_subscription(TransitionEvent, topics.GOVERNANCE_TRANSITIONS,
                                 self.on_transition, qos.STREAM)
        self.create_timer(config.commit_interval, ledger.commit_if_due)
        self.get_logger().info(f'audit ledger {ledger_file} at record {ledger.seq}')

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_signals(self, msg: SignalsMsg) -> None:
        self.trail.signals(msg.proposal_id, signals_record(msg))

    def on_decision(self, msg: GateDecision) -> None:
        self.trail.decision(decision_record(msg), from_time(msg.header.stamp))

    def on_release(self, msg: GovernanceEvent) -> None:
        try:
            self.trail.release(release_record(msg), from_time(msg.header.stamp))
        except KeyError:
            self.get_logger().error(f'release event {msg.event} is outside the contract; ignored')

    def on_transition(self, msg: TransitionEvent) -> None:
        self.trail.lifecycle('transition', self.now_ns(), node='governance',
                             transition=msg.transition.label, start=msg.start_state.label,
                             goal=msg.goal_state.label)

    def on_incident(self, msg: Incident) -> None:
        try:
            _, incident_id, linked = self.trail.incident(incident_report(msg, self.now_ns()),
                                                         self.now_ns(), 'topic')
            self.get_logger().warning(f'incident {incident_id} recorded, linked to '
                                      f'{len(linked)} decisions')
        except IncidentError as exc:
            self.get_logger().error(f'malformed incident from {msg.reporter!r} rejected: {exc}')

    def on_report(self, request, response):
        try:
            seq, incident_id, linked = self.trail.incident(
                incident_report(request.incident, self.now_ns()), self.now_ns(), 'service')
        except IncidentError as exc:
            response.accepted, response.reason = False, str(exc)
            self.get_logger().error(f'incident report rejected: {exc}')
            return response
        response.accepted, response.incident_id = True, incident_id
        response.linked_proposal_ids, response.ledger_seq = list(linked), seq
        self.get_logger().warning(f'incident {incident_id} reported and recorded')
        return response

    def destroy_node(self) -> None:
        self.trail.lifecycle('stopped', self.now_ns())
        self.trail.ledger.close()
        super().destroy_node()


def main(argv=None) -> int:
    return run_node('audit', AuditNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
