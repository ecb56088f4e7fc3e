"""Recorder: watches a running graph and fills a RunRecord (for the demo and the tests)."""
from __future__ import annotations

from nav_msgs.msg import Odometry
from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, Incident
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.enforcement.decision import Action, Reason
from flywheel.report import RunRecord
from flywheel.ros import qos, topics

PATH_SPACING = 0.05  # m between recorded path points


class Recorder(Node):
    """Counts decisions only for proposals it saw itself, so a subscription that matched a little
    late never makes the numbers disagree. `connected` turns true once the whole chain is heard:
    the first decision (gated) or the first proposal (bypassed)."""

    def __init__(self, record: RunRecord, gated: bool, **kwargs):
        super().__init__('recorder', **kwargs)
        self.record = record
        self.gated = gated
        self.connected = False
        self.first_odom_ns: int | None = None
        self.trajectories: dict[str, list] = {}
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.STREAM)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        self.create_subscription(Odometry, topics.ODOM, self.on_odom, qos.SENSOR)

    def restart(self) -> None:
        """Count from now on; the path so far is kept."""
        self.record = RunRecord(self.record.mode, path=self.record.path)
        self.trajectories.clear()

    def on_proposal(self, msg: ProposalMsg) -> None:
        self.connected = self.connected or not self.gated
        self.record.proposals += 1
        self.trajectories[msg.proposal_id] = [(p.pose.position.x, p.pose.position.y)
                                              for p in msg.trajectory]

    def on_decision(self, msg: GateDecision) -> None:
        self.connected = True
        if msg.proposal_id not in self.trajectories:
            return
        action = Action(msg.action)
        self.record.actions[action.name] += 1
        for reason in msg.reasons:
            self.record.reasons[Reason(reason).name] += 1
        trajectory = self.trajectories.pop(msg.proposal_id)
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

