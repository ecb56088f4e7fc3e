"""QoS profiles, defined once and imported by every node and test."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# cmd_vel: only the latest command matters, and it must arrive.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE)
# Proposals, signals, incidents: every message counts (each proposal gets a decision). Writers
# keep a deep history so a reader that falls behind for a while still gets every sample...
STREAM = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                    reliability=ReliabilityPolicy.RELIABLE)
# ... and the Oracle's and the Gate's readers keep everything delivered until it is taken: under a
# flood nothing is dropped by our own queue, it is decided (stale proposals cheaply, as such).
# Proposals lost before they reach a reader show up as gaps in (epoch, seq), counted on status.
INPUT = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
# Records the audit must not miss (gate decisions, governance events): every message carries an
# (epoch, seq); a late or restarted audit receives the last RECORDS_DEPTH of them from the
# publisher's history and records a gap for anything older.
RECORDS_DEPTH = 1000
RECORDS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORDS_DEPTH,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Status and releases: late joiners get the last value.
STATUS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
# /parameter_events, as ROS publishes it.
PARAMETER_EVENTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                              reliability=ReliabilityPolicy.RELIABLE)
# Odometry: sensor data, newest wins.
SENSOR = qos_profile_sensor_data
