"""The client side of `flywheel incident report`: one service call to the audit node."""
from __future__ import annotations

import sys

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from alignment_flywheel.msg import Incident
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.incident import Severity
from flywheel.audit.query import parse_time
from flywheel.errors import FlywheelError, NodeUnreachableError
from flywheel.ros import topics
from flywheel.ros.convert import to_time


def report_incident(args) -> int:
    try:
        stamp = parse_time(args.at) if args.at else 0
    except ValueError as exc:
        raise FlywheelError(f'--at: {exc}') from exc
    context = Context()
    rclpy.init(context=context, args=[])
    node = rclpy.create_node('flywheel_incident_report', context=context)
    try:
        service = topics.service_of('audit', topics.REPORT_INCIDENT, args.namespace or '')
        client = node.create_client(ReportIncident, service)
        if not client.wait_for_service(timeout_sec=args.timeout):
            raise NodeUnreachableError(f'no audit node answers {service} (is the graph '
                                             'up, on this ROS_DOMAIN_ID and --namespace?)')
        request = ReportIncident.Request()
        incident = Incident()
        incident.header.stamp = to_time(stamp)
        incident.severity = int(Severity[args.severity.upper()])
        incident.position.x, incident.position.y = args.x, args.y
        incident.object_id, incident.reporter = args.object, args.reporter
        incident.description, incident.linked_proposal_ids = args.text, list(args.link)
        request.incident = incident
        future = client.call_async(request)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec=args.timeout)
        if not future.done():
            raise NodeUnreachableError(f'the audit node did not answer within {args.timeout} s')
        reply = future.result()
    finally:
        node.destroy_node()
        context.try_shutdown()
    if not reply.accepted:
        print(f'rejected: {reply.reason}', file=sys.stderr)
        return 1
    print(f'recorded {reply.incident_id} as ledger record {reply.ledger_seq}, linked to '
          f'{len(reply.linked_proposal_ids)} decisions')
    return 0
