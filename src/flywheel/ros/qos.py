"""QoS profiles, defined once and imported by every node and test."""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

# cmd_vel: only the latest command matters, and it must arrive.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE)
# Proposals, signals, decisions, incidents: every message counts (each proposal gets a decision).
STREAM = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                    reliability=ReliabilityPolicy.RELIABLE)
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
# Odometry: sensor data, newest wins.
SENSOR = qos_profile_sensor_data
