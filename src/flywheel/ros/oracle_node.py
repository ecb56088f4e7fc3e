"""oracle_node: proposals in, SafetySignals out, scored with the active Oracle release."""
from __future__ import annotations

import time

from rclpy.node import Node

from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.oracle.config import OracleConfig
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import load_spec
from flywheel.proposal import ProposalLimits
from flywheel.ros import qos, topics
from flywheel.ros.convert import proposal_from_msg, signals_to_msg
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import run_node


class OracleNode(Node):
    def __init__(self, **kwargs):
        super().__init__('oracle', **kwargs)
        self.config = declare_config(self, OracleConfig)
        spec = load_spec(config_path(self.config.spec_path))
        limits = ProposalLimits(spec.frame_id, self.config.max_points,
                                self.config.allowed_proposers)
        self.oracle = Oracle(spec, limits)
        self.publisher = self.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.get_logger().info(f'oracle {spec.version} ready: {len(spec.obstacles)} obstacles, '
                               f'{len(spec.keep_out)} keep-out, '
                               f'{len(spec.speed_zones)} speed zones')

    def on_proposal(self, msg: ProposalMsg) -> None:
        started = time.perf_counter_ns()
        try:
            proposal = proposal_from_msg(msg)
        except Exception as exc:  # noqa: BLE001 - unscorable: no verdict, the Gate times it out
            self.get_logger().error(f'cannot read proposal {msg.proposal_id!r}: {exc!r}')
            return
        oracle = self.oracle  # one release per evaluation, even if a swap lands meanwhile
        try:
            signals = oracle.evaluate(proposal)
        except Exception as exc:  # noqa: BLE001 - a scoring bug must stop the robot, not the node
            self.get_logger().error(f'scoring {msg.proposal_id} failed: {exc!r}')
            signals = oracle.rejected(proposal, ['internal:scoring_error'])
        self.publisher.publish(signals_to_msg(
            signals, self.get_clock().now().nanoseconds, msg.header.frame_id,
            time.perf_counter_ns() - started))


def main(argv=None) -> int:
    return run_node('oracle', OracleNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
