"""audit_node: writes every gate decision (with the verdict it embeds), governance event (release
events and the governance node's lifecycle transitions) and incident to the signed, hash-chained
ledger, and takes incident reports (service report_incident).

Gate decisions and governance events are numbered streams heard with qos.RECORDS (reliable,
transient-local): a late or restarted audit receives their recent history, records each record
once, and records a GAP for what it never received (flywheel.audit.trail). Their publishers must
offer the same durability; one that does not is refused by DDS, and said loudly here.
"""
from __future__ import annotations

import os
from pathlib import Path

from rcl_interfaces.msg import ParameterEvent
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python

from alignment_flywheel.msg import GateDecision, GovernanceEvent, Incident
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.config import AuditConfig
from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger
from flywheel.audit.trail import AuditTrail, Receipt
from flywheel.errors import IncidentError
from flywheel.health import Level
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.convert import from_time
from flywheel.ros.params import declare_config
from flywheel.ros.records import (decision_record, governance_record, incident_report,
                                  position)
from flywheel.ros.run import run_node


class AuditNode(Node):
    def __init__(self, **kwargs):
        super().__init__('audit', **kwargs)
        self.config = config = declare_config(self, AuditConfig, on_change=self.on_config)
        ros_home = Path(os.environ.get('ROS_HOME', Path.home() / '.ros'))
        ledger_file = config.ledger_file(ros_home)
        ledger = Ledger(ledger_file, load_or_create_key(config.key_file(ros_home)),
                        config.commit_interval, now_ns=self.now_ns)
        self.trail = AuditTrail(ledger, config.frame_id, config.link_window)
        self.trail.start(self.now_ns(), node=self.get_fully_qualified_name())
        self.decisions = self.create_subscription(
            GateDecision, topics.GATE_DECISIONS, self.on_decision, qos.RECORDS,
            event_callbacks=self._refusals(topics.GATE_DECISIONS))
        self.governance = self.create_subscription(
            GovernanceEvent, topics.GOVERNANCE_EVENTS, self.on_governance, qos.RECORDS,
            event_callbacks=self._refusals(topics.GOVERNANCE_EVENTS))
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        # every live parameter change of every node, as ROS announces it
        self.create_subscription(ParameterEvent, '/parameter_events', self.on_parameters,
                                 qos.PARAMETER_EVENTS)
        self.create_service(ReportIncident, topics.REPORT_INCIDENT, self.on_report)
        # polled every poll_period, so every record is committed within commit_interval
        self.create_timer(ledger.poll_period, ledger.commit_if_due)
        diagnostics.report_health(self, 'audit', self.health)
        self.get_logger().info(f'audit ledger {ledger_file} at record {ledger.seq}')

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _refusals(self, topic: str) -> SubscriptionEventCallbacks:
        def refused(info) -> None:
            self.get_logger().error(
                f'a publisher on {topic} offers a QoS the audit cannot accept '
                f'({info.last_policy_kind}): nothing it publishes is recorded; publish with '
                'flywheel.ros.qos.RECORDS (reliable, transient-local)')
        return SubscriptionEventCallbacks(incompatible_qos=refused)

    def on_decision(self, msg: GateDecision) -> None:
        self._report(self.trail.decision(position(self.decisions.topic_name, msg),
                                         decision_record(msg), from_time(msg.header.stamp)))

    def on_governance(self, msg: GovernanceEvent) -> None:
        self._report(self.trail.governance(position(self.governance.topic_name, msg),
                                           governance_record(msg), from_time(msg.header.stamp)))

    def _report(self, receipt: Receipt) -> None:
        if receipt.gap is not None:
            gap = receipt.gap
            self.get_logger().error(
                f'{gap.stream} epoch {gap.epoch}: records {gap.first}..{gap.last} never arrived '
                f'({gap.count}); recorded as gap record {receipt.gap_seq}')

    def health(self):
        """For /diagnostics: how far the ledger is, how far behind its commits are, gaps."""
        ledger = self.trail.ledger
        lag = ledger.seq - ledger.committed_seq
        gaps = self.trail.gaps
        level, message = Level.OK, f'ledger at record {ledger.seq}'
        if gaps:
            level, message = Level.WARN, f'{gaps} gap records: some records never arrived'
        return level, message, (('ledger', str(ledger.path)), ('records', str(ledger.seq)),
                                ('uncommitted', str(lag)), ('gap_records', str(gaps)),
                                ('incidents', str(self.trail.incidents)))

    def on_config(self, config: AuditConfig) -> None:
        self.trail.link_window_ns = int(config.link_window * 1e9)
        self.config = config

    def on_parameters(self, msg: ParameterEvent) -> None:
        """A parameter changed or was deleted on a running node (its declarations at start are
        in its own configuration, not changes): recorded with who and what."""
        if not msg.changed_parameters and not msg.deleted_parameters:
            return
        self.trail.parameters(msg.node, {p.name: parameter_value_to_python(p.value)
                                         for p in msg.changed_parameters},
                              [p.name for p in msg.deleted_parameters],
                              from_time(msg.stamp) or self.now_ns())

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
        self.trail.stop(self.now_ns())
        super().destroy_node()


def main(argv=None) -> int:
    return run_node('audit', AuditNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
