"""StoryRecorder: watches the story's graph and fills a Timeline (flywheel/story.py): incidents,
the Gate's escalations, governance's release and rollout events, the Oracle's status, and the
epochs of the proposals the Gate decided on (a restarted Proposer numbers from a new epoch); it
keeps the proposals (as published) of the pass that led to the hazard's first incident."""
from __future__ import annotations

import time
from collections import deque

from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, GovernanceEvent, Incident, OracleStatus
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.ros import qos, topics
from flywheel.story import HAZARD_ID, PASS_WINDOW_S, Timeline

_SEVERITY = {Incident.SEVERITY_COLLISION: 'collision', Incident.SEVERITY_NEAR_MISS: 'near_miss',
             Incident.SEVERITY_INFO: 'info'}
# governance events worth a line of the story (lifecycle transitions and overlays are not)
_EVENTS = {GovernanceEvent.EVENT_SUBMITTED: ('release', 'submitted'),
           GovernanceEvent.EVENT_VERIFIED: ('release', 'verified'),
           GovernanceEvent.EVENT_REJECTED: ('release', 'REJECTED'),
           GovernanceEvent.EVENT_INSTALLED: ('release', 'installed'),
           GovernanceEvent.EVENT_STAGE_STARTED: ('stage', 'stage started'),
           GovernanceEvent.EVENT_STAGE_PASSED: ('stage', 'stage passed'),
           GovernanceEvent.EVENT_STAGE_FAILED: ('stage', 'STAGE FAILED'),
           GovernanceEvent.EVENT_PAUSED: ('stage', 'PAUSED'),
           GovernanceEvent.EVENT_PROMOTED: ('stage', 'promoted: full'),
           GovernanceEvent.EVENT_ABORTED: ('stage', 'ABORTED'),
           GovernanceEvent.EVENT_ROLLED_BACK: ('release', 'rolled back'),
           GovernanceEvent.EVENT_SWAP_TIMEOUT: ('release', 'SWAP TIMEOUT')}
ENDED = (GovernanceEvent.EVENT_PROMOTED, GovernanceEvent.EVENT_ABORTED,
         GovernanceEvent.EVENT_STAGE_FAILED, GovernanceEvent.EVENT_PAUSED,
         GovernanceEvent.EVENT_REJECTED)


class StoryRecorder(Node):
    """Times are seconds since `zero` (monotonic; the driver rebases it when the Proposer
    starts)."""

    def __init__(self, **kwargs):
        super().__init__('story_recorder', **kwargs)
        self.timeline = Timeline()
        self.zero = time.monotonic()
        self.governance_active = False
        self.oracle_running = ''
        self.events: list[tuple[int, str, int]] = []       # (event, version, number)
        self._recent: deque[tuple[float, bytes]] = deque(maxlen=200)
        self.pass_proposals: list[bytes] = []     # as published, before the first hazard incident
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM,
                                 raw=True)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.RECORDS)
        self.create_subscription(GovernanceEvent, topics.GOVERNANCE_EVENTS, self.on_event,
                                 qos.RECORDS)
        self.create_subscription(OracleStatus, topics.ORACLE_STATUS, self.on_status, qos.STATUS)

    def now(self) -> float:
        return time.monotonic() - self.zero

    def rebase(self, zero: float) -> None:
        """Count from ``zero`` (monotonic) on; what was recorded before gets negative times."""
        self.timeline.shift(zero - self.zero)
        self.zero = zero

    def on_proposal(self, data: bytes) -> None:
        self._recent.append((self.now(), data))

    def on_incident(self, msg: Incident) -> None:
        if msg.object_id == HAZARD_ID and not self.timeline.hazard_incidents():
            t = self.now()
            self.pass_proposals = [d for s, d in self._recent if t - PASS_WINDOW_S <= s <= t]
        self.timeline.incident(self.now(), _SEVERITY.get(msg.severity, str(msg.severity)),
                               msg.object_id, msg.position.x, msg.position.y)

    def on_decision(self, msg: GateDecision) -> None:
        if msg.subject != GateDecision.SUBJECT_PROPOSAL:
            return
        parts = msg.proposal_id.split('/')
        if len(parts) == 3 and parts[1].isdigit():
            self.timeline.proposer_epochs.add(int(parts[1]))
        if msg.action == GateDecision.ACTION_ESCALATE:
            self.timeline.escalation(self.now(), msg.proposal_id)

    def on_event(self, msg: GovernanceEvent) -> None:
        if msg.event == GovernanceEvent.EVENT_TRANSITION:
            # 'activate: inactive -> active' (a failed transition adds its reason after)
            goal = msg.reason.partition('->')[2].split()
            self.governance_active = bool(goal) and goal[0] == 'active'
            return
        self.events.append((msg.event, msg.oracle_version, msg.number))
        kind, what = _EVENTS.get(msg.event, (None, None))
        if kind is None:
            return
        t = self.now()
        release = f'{msg.oracle_version} (release {msg.number})' if msg.number else ''
        self.timeline.add(t, kind, ' '.join(filter(None, [what, release, msg.reason[:160]])))
        if msg.event == GovernanceEvent.EVENT_PROMOTED and self.timeline.full_t is None:
            self.timeline.full_t = t

    def on_status(self, msg: OracleStatus) -> None:
        if msg.oracle_running != self.oracle_running:
            self.oracle_running = msg.oracle_running
            self.timeline.add(self.now(), 'release',
                              f'the Oracle runs {msg.oracle_running or "nothing"}')

    def ended(self, number: int) -> int | None:
        """The first event that ends release ``number``'s rollout (promoted, aborted, failed,
        paused, rejected), or None while it runs."""
        for event, _, n in self.events:
            if event in ENDED and (n == number or event == GovernanceEvent.EVENT_REJECTED):
                return event
        return None
