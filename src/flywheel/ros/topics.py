"""Topic names, one place (all relative, so a namespace or a remap moves the whole graph)."""
PROPOSALS = 'proposals'
SAFETY_SIGNALS = 'safety_signals'
GATE_DECISIONS = 'gate_decisions'
CMD_VEL = 'cmd_vel'
CMD_VEL_IN = 'cmd_vel_in'       # the adapter's input: an external planner's command
ODOM = 'odom'
INCIDENTS = 'incidents'
RELEASE_EVENTS = 'release_events'
REPORT_INCIDENT = 'report_incident'   # service
