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
