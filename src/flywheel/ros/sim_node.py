"""sim_node: executes cmd_vel in the embedded world, publishes odom, reports incidents.

It speaks only standard topics (cmd_vel in, nav_msgs/Odometry out) plus Incident, so a Gazebo or
real-robot bridge replaces it without changes elsewhere.
"""
from __future__ import annotations

import math

from geometry_msgs.msg import Point, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node

from alignment_flywheel.msg import Incident
from flywheel.health import Level
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.convert import to_time
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import run_node
from flywheel.sim.config import SimConfig
from flywheel.sim.sim import EventKind, Sim, SimEvent
from flywheel.sim.world import load_world

_SEVERITY = {EventKind.COLLISION: Incident.SEVERITY_COLLISION,
             EventKind.NEAR_MISS: Incident.SEVERITY_NEAR_MISS}


def incident_from_event(e: SimEvent, frame_id: str, reporter: str, number: int) -> Incident:
    msg = Incident()
    msg.header.stamp = to_time(e.stamp_ns)
    msg.header.frame_id = frame_id
    msg.incident_id = f'{reporter}/{number}'
    msg.severity = _SEVERITY[e.kind]
    msg.position = Point(x=e.x, y=e.y)
    msg.object_id, msg.distance, msg.reporter = e.object_id, e.distance, reporter
    msg.description = f'{e.kind.value} with {e.object_id} at ({e.x:.2f}, {e.y:.2f})'
    return msg


class SimNode(Node):
    def __init__(self, **kwargs):
        super().__init__('sim', **kwargs)
        self.config = declare_config(self, SimConfig)
        self.world = load_world(config_path(self.config.world_path))
        self.sim = Sim(self.world, self.config.episode_gap)
        self.command = (0.0, 0.0)
        self.command_ns: int | None = None
        self.last_step_ns = self.now_ns()
        self.incidents = 0
        self.odom_pub = self.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
        self.incident_pub = self.create_publisher(Incident, topics.INCIDENTS, qos.STREAM)
        self.create_subscription(Twist, topics.CMD_VEL, self.on_cmd_vel, qos.COMMAND)
        self.create_timer(1.0 / self.config.rate, self.on_step)
        diagnostics.report_health(self, 'sim', self.health)
        self.get_logger().info(f'sim ready: {len(self.world.obstacles)} obstacles, start '
                               f'{self.world.start}')

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def health(self):
        s = self.sim.state
        fresh = (self.command_ns is not None
                 and self.now_ns() - self.command_ns <= self.config.cmd_timeout * 1e9)
        level, message = (Level.WARN, f'{self.incidents} incidents') if self.incidents else (
            Level.OK, 'running')
        return level, message, (('pose', f'{s.x:.2f} {s.y:.2f} {s.yaw:.2f}'),
                                ('speed', f'{s.v:.2f} {s.w:.2f}'),
                                ('cmd_vel_fresh', str(fresh)),
                                ('incidents', str(self.incidents)))

    def on_cmd_vel(self, msg: Twist) -> None:
        v, w = msg.linear.x, msg.angular.z
        if not (math.isfinite(v) and math.isfinite(w)):
            self.get_logger().error(f'non-finite cmd_vel ({v}, {w}): stopping')
            v, w = 0.0, 0.0
        self.command, self.command_ns = (v, w), self.now_ns()

    def on_step(self) -> None:
        now = self.now_ns()
        dt = (now - self.last_step_ns) * 1e-9
        self.last_step_ns = now
        fresh = (self.command_ns is not None
                 and now - self.command_ns <= self.config.cmd_timeout * 1e9)
        v, w = self.command if fresh else (0.0, 0.0)
        for event in self.sim.step(v, w, dt, now):
            self.incidents += 1
            self.get_logger().warning(f'{event.kind.value}: {event.object_id} at '
                                   f'({event.x:.2f}, {event.y:.2f})')
            self.incident_pub.publish(
                incident_from_event(event, self.world.frame_id, self.get_name(), self.incidents))
        self.odom_pub.publish(self._odometry(now))

    def _odometry(self, now: int) -> Odometry:
        s = self.sim.state
        msg = Odometry()
        msg.header.stamp = to_time(now)
        msg.header.frame_id = self.world.frame_id
        msg.child_frame_id = 'base_link'
        msg.pose.pose.position.x, msg.pose.pose.position.y = s.x, s.y
        msg.pose.pose.orientation.z = math.sin(s.yaw / 2)
        msg.pose.pose.orientation.w = math.cos(s.yaw / 2)
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = s.v, s.w
        return msg


def main(argv=None) -> int:
    return run_node('sim', SimNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
