"""Topic names, one place (all relative, so a namespace or a remap moves the whole graph)."""
PROPOSALS = 'proposals'
SAFETY_SIGNALS = 'safety_signals'
GATE_DECISIONS = 'gate_decisions'
CMD_VEL = 'cmd_vel'
CMD_VEL_IN = 'cmd_vel_in'       # the adapter's input: an external planner's command
ODOM = 'odom'
INCIDENTS = 'incidents'
GOVERNANCE_EVENTS = 'governance/events'   # releases, refusals, lifecycle transitions
ORACLE_STATUS = 'oracle_status'
ORACLE_RELEASE = 'oracle_release'
ORACLE_RUNNING = 'oracle/running'         # what the Oracle node actually runs (signed)
ORACLE_MARKERS = 'oracle/markers'         # the zones of the spec in force (transient local)
ORACLE_OVERLAY = 'oracle_overlay'         # governance's coverage overlay (transient local)
MARKERS = 'markers'                       # recent proposals by Gate action, the footprint
# Services live under the node that offers them (/<namespace>/governance/submit_release), like
# every ROS node's own get_state, so a namespaced graph or two robots never collide.
SUBMIT_RELEASE = '~/submit_release'
ROLLBACK = '~/rollback'
ROLLOUT = '~/rollout'
GET_STATUS = '~/get_status'
REPORT_INCIDENT = '~/report_incident'
VERIFY = '~/verify'
# ... and as a neighbour in the same namespace calls it (the Gate asks the verifier node).
VERIFIER_VERIFY = 'verifier/verify'


def service_of(node: str, service: str, namespace: str = '') -> str:
    """The absolute name of ``node``'s ``service`` (one of the ~/ names above) in ``namespace``,
    for clients that are not in that namespace (the operator CLI)."""
    return '/' + '/'.join(p for p in (namespace.strip('/'), node, service.lstrip('~/')) if p)
