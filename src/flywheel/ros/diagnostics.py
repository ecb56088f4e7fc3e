"""Publishing Health on /diagnostics as diagnostic_msgs/DiagnosticArray (what robot_monitor,
rqt_robot_monitor, Foxglove and diagnostic_aggregator read)."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from flywheel.health import Health
from flywheel.ros.convert import to_time

TOPIC = '/diagnostics'      # absolute: the aggregator listens there, whatever our namespace


def health_to_msg(reports: list[Health], stamp_ns: int) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = to_time(stamp_ns)
    msg.status = [DiagnosticStatus(level=bytes([int(h.level)]), name=h.name,
                                   message=h.message, hardware_id=h.hardware_id,
                                   values=[KeyValue(key=k, value=v) for k, v in h.values])
                  for h in reports]
    return msg


def report_health(node, name: str, report, period: float = 1.0, callback_group=None) -> None:
    """Publish ``report() -> (Level, message, values)`` as one DiagnosticStatus every ``period``
    (steady clock: it keeps reporting under a stalled sim clock)."""
    from rclpy.clock import Clock, ClockType
    pub = node.create_publisher(DiagnosticArray, TOPIC, 10)

    def publish() -> None:
        level, message, values = report()
        pub.publish(health_to_msg([Health(f'alignment_flywheel: {name}',
                                          node.get_fully_qualified_name(), level, message,
                                          tuple(values))], node.get_clock().now().nanoseconds))
    node.create_timer(period, publish, clock=Clock(clock_type=ClockType.STEADY_TIME),
                      callback_group=callback_group)
