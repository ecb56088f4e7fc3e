"""markers_node: recent proposals coloured by what the Gate did with them, and the robot's
footprint at its odometry, as a MarkerArray on `markers` for RViz or Foxglove (the Oracle
publishes the zones of the spec in force on `oracle/markers`).

It listens beside the Gate and never touches the decision path: a slow RViz costs the Gate
nothing.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from nav_msgs.msg import Odometry as OdometryMsg
from rclpy.node import Node
from visualization_msgs.msg import MarkerArray

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from flywheel.enforcement.decision import Action
from flywheel.oracle.spec import load_spec
from flywheel.ros import qos, topics
from flywheel.ros.convert import odometry_from_msg
from flywheel.ros.markers import shapes_to_markers
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import run_node
from flywheel.settings import setting
from flywheel.viz import footprint_shape, trajectory_shape
from flywheel.wire import WireError, decode_proposal


@dataclass(frozen=True)
class MarkersConfig:
    spec_path: str = setting('oracle_spec.yaml', 'Spec whose footprint is drawn at the robot.',
                             read_only=True)
    frame_id: str = setting('map', 'World frame of the markers.', read_only=True)
    recent: int = setting(10, 'How many of the latest decided proposals are drawn.', lo=1,
                          hi=200, read_only=True)
    rate: float = setting(5.0, 'Marker updates per second.', lo=0.1, hi=50.0, read_only=True)


class MarkersNode(Node):
    def __init__(self, **kwargs):
        super().__init__('markers', **kwargs)
        self.config = declare_config(self, MarkersConfig)
        self.footprint = load_spec(config_path(self.config.spec_path)).footprint
        self.trajectories: OrderedDict[str, object] = OrderedDict()
        self.decided: OrderedDict[str, Action] = OrderedDict()
        self.odometry = None
        self.pub = self.create_publisher(MarkerArray, topics.MARKERS, 10)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM,
                                 raw=True)
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.RECORDS)
        self.create_subscription(OdometryMsg, topics.ODOM, self.on_odometry, qos.SENSOR)
        self.create_timer(1.0 / self.config.rate, self.on_timer)

    def on_proposal(self, raw: bytes) -> None:
        try:
            p = decode_proposal(raw)
        except WireError:
            return
        self.trajectories[p.proposal_id] = p.states[:, :2].copy()
        while len(self.trajectories) > 4 * self.config.recent:
            self.trajectories.popitem(last=False)

    def on_decision(self, msg: GateDecision) -> None:
        if msg.subject == GateDecision.SUBJECT_PROPOSAL and msg.proposal_id in self.trajectories:
            self.decided[msg.proposal_id] = Action(msg.action)
            while len(self.decided) > self.config.recent:
                self.decided.popitem(last=False)

    def on_odometry(self, msg: OdometryMsg) -> None:
        self.odometry = odometry_from_msg(msg)

    def on_timer(self) -> None:
        shapes = [trajectory_shape(i, self.trajectories[pid], action)
                  for i, (pid, action) in enumerate(self.decided.items())
                  if pid in self.trajectories]
        if self.odometry is not None:
            s = self.odometry.state
            shapes.append(footprint_shape(self.footprint, s.x, s.y, s.yaw))
        self.pub.publish(shapes_to_markers(shapes, self.config.frame_id,
                                           self.get_clock().now().to_msg(),
                                           lifetime_s=2.0 / self.config.rate, labels=False))


def main(argv=None) -> int:
    return run_node('markers', MarkersNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
