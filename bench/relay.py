"""The baseline of bench/end_to_end.py: the same hops as Oracle and Gate, doing no work.

    python bench/relay.py oracle|gate --ros-args -r __ns:=/baseline

`oracle` answers every Proposal with an empty SafetySignals naming it; `gate` holds proposals and
publishes the held command when signals name it. Same message types and QoS as the real nodes.
"""
from __future__ import annotations

import sys

import rclpy
from geometry_msgs.msg import Twist
from rclpy.executors import ExternalShutdownException

from alignment_flywheel.msg import Proposal, SafetySignals
from flywheel.ros import qos, topics


def main() -> int:
    role = sys.argv[1]
    rclpy.init(args=sys.argv)
    node = rclpy.create_node(f'relay_{role}')
    if role == 'oracle':
        out = node.create_publisher(SafetySignals, topics.SAFETY_SIGNALS, qos.STREAM)
        node.create_subscription(Proposal, topics.PROPOSALS,
                                 lambda m: out.publish(SafetySignals(proposal_id=m.proposal_id)),
                                 qos.STREAM)
    else:
        held: dict[str, Twist] = {}
        out = node.create_publisher(Twist, topics.CMD_VEL, qos.COMMAND)
        node.create_subscription(Proposal, topics.PROPOSALS,
                                 lambda m: held.__setitem__(m.proposal_id, m.command), qos.STREAM)

        def on_signals(m):
            command = held.pop(m.proposal_id, None)
            if command is not None:
                out.publish(command)
        node.create_subscription(SafetySignals, topics.SAFETY_SIGNALS, on_signals, qos.STREAM)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
