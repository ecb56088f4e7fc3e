"""The client side of `flywheel incident report`: one service call to the audit node."""
from __future__ import annotations

import sys

from alignment_flywheel.msg import Incident
from alignment_flywheel.srv import ReportIncident
from flywheel.audit.incident import Severity
from flywheel.audit.query import parse_time
from flywheel.errors import FlywheelError
from flywheel.ros import topics
from flywheel.ros.client import call
from flywheel.ros.convert import to_time


def report_incident(args) -> int:
    try:
        stamp = parse_time(args.at) if args.at else 0
    except ValueError as exc:
        raise FlywheelError(f'--at: {exc}') from exc
    service = topics.service_of('audit', topics.REPORT_INCIDENT, args.namespace or '')
    request = ReportIncident.Request()
    incident = Incident()
    incident.header.stamp = to_time(stamp)
    incident.severity = int(Severity[args.severity.upper()])
    incident.position.x, incident.position.y = args.x, args.y
    incident.object_id, incident.reporter = args.object, args.reporter
    incident.description, incident.linked_proposal_ids = args.text, list(args.link)
    request.incident = incident
    reply = call(ReportIncident, service, request, args.timeout,
                 f'no audit node answers {service} (is the graph up, on this ROS_DOMAIN_ID and '
                 '--namespace?)')
    if not reply.accepted:
        print(f'rejected: {reply.reason}', file=sys.stderr)
        return 1
    print(f'recorded {reply.incident_id} as ledger record {reply.ledger_seq}, linked to '
          f'{len(reply.linked_proposal_ids)} decisions')
    return 0
