"""gate_node: republishes only approved commands on cmd_vel, and stop when none is fresh.

Runs on its own timer: the fail-closed check does not depend on any input arriving.
"""
from __future__ import annotations

from geometry_msgs.msg import Twist
from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, OracleStatus
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.enforcement.decision import Action, Decision, Finding, Reason
from flywheel.enforcement.gate import STOP, Gate, GateConfig
from flywheel.enforcement.policy import load_policy
from flywheel.ros import qos, topics
from flywheel.ros.convert import (decision_to_msg, proposal_from_msg, signals_from_msg,
                                  twist)
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import run_node


class GateNode(Node):
    def __init__(self, **kwargs):
        super().__init__('gate', **kwargs)
        self.config = declare_config(self, GateConfig)
        policy = load_policy(config_path(self.config.policy_path))
        self.gate = Gate(policy, self.config)
        self.cmd_pub = self.create_publisher(Twist, topics.CMD_VEL, qos.COMMAND)
        self.decision_pub = self.create_publisher(GateDecision, topics.GATE_DECISIONS, qos.STREAM)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.create_subscription(SignalsMsg, topics.SAFETY_SIGNALS, self.on_signals, qos.STREAM)
        self.create_timer(self.config.tick_period, self.on_tick)
        if self.config.follow_governance:
            self.create_subscription(OracleStatus, topics.ORACLE_STATUS, self.on_status,
                                     qos.STATUS)
        self._stopped = False
        self.get_logger().info(
            f'gate ready: policy {policy.version}, oracle versions '
            f'{sorted(self.gate.accepted_versions)}, '
            f'command_timeout {self.config.command_timeout}s')

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_proposal(self, msg: ProposalMsg) -> None:
        try:
            decisions = self.gate.on_proposal(proposal_from_msg(msg), self.now_ns())
        except Exception as exc:  # noqa: BLE001 - fail closed, never silent
            decisions = [self._internal_error(msg.proposal_id, msg.proposer_id, exc)]
        self._publish(decisions)

    def on_signals(self, msg: SignalsMsg) -> None:
        try:
            decision = self.gate.on_signals(signals_from_msg(msg), self.now_ns())
            decisions = [decision] if decision is not None else []
        except Exception as exc:  # noqa: BLE001 - e.g. an evidence kind outside the contract
            decisions = [self._internal_error(msg.proposal_id, '', exc)]
        self._publish(decisions)

    def on_status(self, msg: OracleStatus) -> None:
        versions = frozenset(msg.accepted_versions)
        if versions != self.gate.accepted_versions:
            self.get_logger().info(f'accepted Oracle versions now {sorted(versions)} '
                                   f'(governance: active {msg.active_version or "none"})')
            self.gate.accept_versions(versions)

    def on_tick(self) -> None:
        decisions, stop = self.gate.tick(self.now_ns())
        self._publish(decisions)
        if stop:
            if not self._stopped:
                self.get_logger().warning('no fresh approved command: publishing stop')
                self._stopped = True
            self.cmd_pub.publish(twist(*STOP))

    def _publish(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if decision.command is not None:
                self.cmd_pub.publish(twist(*decision.command))
                if decision.action.approves:
                    self._stopped = False
            if decision.action >= Action.BLOCK:
                self.get_logger().info(
                    f'{decision.action.name} {decision.proposal_id}: '
                    + '; '.join(f'{f.reason.name} {f.detail}' for f in decision.findings),
                    throttle_duration_sec=1.0)
            self.decision_pub.publish(decision_to_msg(decision))

    def _internal_error(self, proposal_id: str, proposer_id: str, exc: Exception) -> Decision:
        self.get_logger().error(f'{proposal_id}: {exc!r}; falling back to stop')
        return self.gate.fallback(proposal_id, proposer_id,
                                  Finding(Action.FALLBACK, Reason.INTERNAL_ERROR, repr(exc)),
                                  self.now_ns())


def main(argv=None) -> int:
    return run_node('gate', GateNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
