"""Recorder: watches a running graph and fills a RunRecord (for the demo and the tests)."""
from __future__ import annotations

from collections import OrderedDict

from nav_msgs.msg import Odometry
from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, Incident
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.enforcement.decision import Action, Reason
from flywheel.report import RunRecord
from flywheel.ros import qos, topics

PATH_SPACING = 0.05  # m between recorded path points
EARLY_LIMIT = 1000   # decisions kept waiting for their proposal (older ones are for proposals
                     # published before the record started, never to come)


class Recorder(Node):
    """Counts decisions only for proposals it saw itself, so a subscription that matched a little
    late never makes the numbers disagree. The two topics come from different processes, so a
    decision can arrive before its proposal (seen on a loaded machine): it waits in `early`
    until the proposal comes. `connected` turns true once the whole chain is heard:
    the first decision (gated) or the first proposal (bypassed). After `close()` no new proposal
    is counted, and `undecided` says how many counted ones still wait for their decision."""

    def __init__(self, record: RunRecord, gated: bool, **kwargs):
        super().__init__('recorder', **kwargs)
        self.record = record
        self.gated = gated
        self.connected = False
        self.closed = False
        self.first_odom_ns: int | None = None
        self.trajectories: dict[str, list] = {}
        self.early: OrderedDict[str, GateDecision] = OrderedDict()
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.STREAM)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        self.create_subscription(Odometry, topics.ODOM, self.on_odom, qos.SENSOR)

    def restart(self) -> None:
        """Count from now on; the path so far is kept. Early decisions are kept too: one that
        came just before may be for a proposal still on its way."""
        self.record = RunRecord(self.record.mode, path=self.record.path)
        self.trajectories.clear()

    def close(self) -> None:
        """Stop counting proposals; decisions for the ones counted are still taken."""
        self.closed = True

    @property
    def undecided(self) -> int:
        return len(self.trajectories) if self.gated else 0

    def on_proposal(self, msg: ProposalMsg) -> None:
        if self.closed:
            return
        self.connected = self.connected or not self.gated
        self.record.proposals += 1
        trajectory = [(p.pose.position.x, p.pose.position.y) for p in msg.trajectory]
        decision = self.early.pop(msg.proposal_id, None)
        if decision is None:
            self.trajectories[msg.proposal_id] = trajectory
        else:
            self._count(decision, trajectory)

    def on_decision(self, msg: GateDecision) -> None:
        self.connected = True
        if msg.subject != GateDecision.SUBJECT_PROPOSAL:
            return          # verdicts, shadow verdicts and verifications are not the proposal's
        trajectory = self.trajectories.pop(msg.proposal_id, None)
        if trajectory is not None:
            self._count(msg, trajectory)
        elif not self.closed:
            self.early[msg.proposal_id] = msg
            if len(self.early) > EARLY_LIMIT:
                self.early.popitem(last=False)

    def _count(self, decision: GateDecision, trajectory: list) -> None:
        action = Action(decision.action)
        self.record.actions[action.name] += 1
        for reason in decision.reasons:
            self.record.reasons[Reason(reason).name] += 1
        if not action.approves and trajectory:
            self.record.blocked.append(trajectory)

    def on_incident(self, msg: Incident) -> None:
        entry = (msg.object_id, msg.position.x, msg.position.y)
        if msg.severity == Incident.SEVERITY_COLLISION:
            self.record.collisions.append(entry)
        elif msg.severity == Incident.SEVERITY_NEAR_MISS:
            self.record.near_misses.append(entry)

    def on_odom(self, msg: Odometry) -> None:
        if self.first_odom_ns is None:
            self.first_odom_ns = self.get_clock().now().nanoseconds
        xy = (msg.pose.pose.position.x, msg.pose.pose.position.y)
        path = self.record.path
        if not path or (xy[0] - path[-1][0]) ** 2 + (xy[1] - path[-1][1]) ** 2 >= PATH_SPACING ** 2:
            path.append(xy)

