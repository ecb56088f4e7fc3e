"""BypassRelay: the demo's comparison run only. It executes every proposed command, ungated, to show
what the Gate prevents; it is never part of a deployed graph."""
from __future__ import annotations

from geometry_msgs.msg import Twist
from rclpy.node import Node

from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.ros import qos, topics


class BypassRelay(Node):
    """For the demo's comparison run only: executes every proposed command, ungated."""

    def __init__(self, **kwargs):
        super().__init__('bypass_relay', **kwargs)
        self.publisher = self.create_publisher(Twist, topics.CMD_VEL, qos.COMMAND)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)

    def on_proposal(self, msg: ProposalMsg) -> None:
        self.publisher.publish(msg.command)
