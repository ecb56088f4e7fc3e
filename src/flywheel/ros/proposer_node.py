"""proposer_node: wraps a planner plugin (or an external cmd_vel) and publishes Proposals."""
from __future__ import annotations

import time
from dataclasses import MISSING

from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry as OdometryMsg
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.auth import load_message_key
from flywheel.errors import SpecError
from flywheel.health import Level
from flywheel.odometry import Odometry, odometry_problem
from flywheel.proposer.adapter import TwistAdapter
from flywheel.proposer.config import ProposerConfig
from flywheel.proposer.faults import FaultConfig, FaultInjector
from flywheel.proposer.planner import load_planner, planner_class, planner_parameters
from flywheel.proposer.proposer import Proposer
from flywheel.provision import NODE_KEYS, key_path
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.convert import odometry_from_msg
from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node
from flywheel.wire import encode_proposal

PLANNER_PREFIX = 'planner.'


class ProposerNode(Node):
    def __init__(self, **kwargs):
        super().__init__('proposer', **kwargs)
        self.config = config = declare_config(self, ProposerConfig)
        if config.mode == 'adapter':
            planner = self.adapter = TwistAdapter(config.adapter_horizon_points, config.adapter_dt)
        elif config.mode == 'planner':
            self.adapter = None
            params = self._planner_params(config.planner_plugin)
            planner = load_planner(config.planner_plugin, params)
        else:
            raise SpecError('mode', f'expected "planner" or "adapter", got {config.mode!r}')
        faults = None
        if config.fault_rate > 0.0:
            faults = FaultInjector(FaultConfig(
                config.fault_rate, config.fault_min_duration, config.fault_max_duration,
                config.overspeed_factor, config.fault_seed, config.fault_kinds))
        self.proposer = Proposer(config.proposer_id, planner, config.frame_id, time.time_ns(),
                                 faults)
        self.key = (load_message_key(key_path(config.signing_key_path, NODE_KEYS['proposer']))
                    if config.authenticate else None)
        self.odometry: Odometry | None = None
        self.publisher = self.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
        self.create_subscription(OdometryMsg, topics.ODOM, self.on_odom, qos.SENSOR)
        self.problem = 'no odometry received'
        diagnostics.report_health(self, 'proposer', self.health)
        if self.adapter is not None:
            # One type per topic: a TwistStamped publisher never matches a Twist subscription
            # (and DDS says nothing), so the type is a parameter, as in Nav2.
            if config.enable_stamped_cmd_vel:
                self.create_subscription(TwistStamped, topics.CMD_VEL_IN,
                                         self.on_external_twist_stamped, qos.COMMAND)
            else:
                self.create_subscription(Twist, topics.CMD_VEL_IN, self.on_external_twist,
                                         qos.COMMAND)
        else:
            self.create_timer(1.0 / config.rate, self.on_timer)
        source = config.planner_plugin if self.adapter is None else (
            f'cmd_vel_in ({"TwistStamped" if config.enable_stamped_cmd_vel else "Twist"})')
        self.get_logger().info(f'proposer {config.proposer_id!r} ready ({config.mode}: {source}, '
                               f'fault_rate {config.fault_rate})')

    def _planner_params(self, spec: str) -> dict:
        """Declare `planner.<name>` for each keyword the plugin takes; return those that are set."""
        params = {}
        for name, default in planner_parameters(planner_class(spec)).items():
            if default is MISSING or default is None:
                value = self.declare_parameter(
                    PLANNER_PREFIX + name, None, ParameterDescriptor(dynamic_typing=True)).value
            else:
                value = self.declare_parameter(PLANNER_PREFIX + name, default).value
            if value is not None:
                params[name] = list(value) if isinstance(value, (list, tuple)) else value
        route = params.get('route')
        if route and not isinstance(route[0], (list, tuple)):
            # ROS has no nested arrays: a route is given flat, [x0, y0, x1, y1, ...]
            if len(route) % 2:
                raise SpecError('planner.route',
                                f'needs an even number of values, got {len(route)}')
            params['route'] = [route[i:i + 2] for i in range(0, len(route), 2)]
        return params

    def on_odom(self, msg: OdometryMsg) -> None:
        self.odometry = odometry_from_msg(msg)

    def on_timer(self) -> None:
        self._propose()

    def on_external_twist(self, msg: Twist) -> None:
        self.adapter.twist = (msg.linear.x, msg.angular.z)
        self._propose()

    def on_external_twist_stamped(self, msg: TwistStamped) -> None:
        # The header is the controller's (often base_link, sometimes an unset stamp): the
        # proposal is stamped and anchored by this node from its own odometry, as for a Twist.
        self.on_external_twist(msg.twist)

    def health(self):
        if self.problem is not None:
            return Level.WARN, f'not proposing: {self.problem}', ()
        fault = self.proposer.last_fault
        return Level.OK, 'proposing', (
            ('epoch', str(self.proposer.epoch)), ('seq', str(self.proposer.seq)),
            ('mode', self.config.mode), ('signed', str(self.key is not None)),
            ('injected_fault', fault.name if fault else ''))

    def _propose(self) -> None:
        now = self.get_clock().now().nanoseconds
        problem = odometry_problem(self.odometry, now, self.config.frame_id,
                                   int(self.config.odom_timeout * 1e9))
        self.problem = problem
        if problem is not None:
            self.get_logger().warning(f'not proposing: {problem}', throttle_duration_sec=5.0)
            return
        proposal = self.proposer.propose(self.odometry.state, now)
        if self.proposer.last_fault is not None:
            self.get_logger().debug(
                f'{proposal.proposal_id}: injected {self.proposer.last_fault.name}')
        self.publisher.publish(encode_proposal(proposal, self.key))


def main(argv=None) -> int:
    return run_node('proposer', ProposerNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
