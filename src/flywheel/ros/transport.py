"""Which DDS transport every flywheel process uses: UDP only, never Fast DDS shared memory.

Why: Fast DDS's shared-memory transport can block publish() for up to a second when a subscriber
dies holding its port mutex, or while a port health check runs (seen in gdb: SharedMemManager::
Port::try_push -> interprocess_mutex::lock). A blocked publish on cmd_vel would delay the Gate's
stop past its deadline. UDP sends (non-blocking) never wait on another process.

rmw_fastrtps builds its own transports (shared memory + UDP) when ROS_AUTOMATIC_DISCOVERY_RANGE is
LOCALHOST, so that case gets a profile that does the same host-only discovery over UDP, and the
range is handed to the profile. A user's own Fast DDS profile is always respected (and logged).
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
LOCALHOST_PROFILE = 'localhost_udp.xml'
ANY_HOST_PROFILE = 'udp.xml'


def profile_dir() -> Path:
    from flywheel.ros.params import package_config_dir
    return package_config_dir() / 'dds'


def configure_transport(env: dict | None = None) -> str:
    """Point ``env`` (default: this process's environment, before rclpy.init) at the UDP-only
    profile; returns a one-line account of what was chosen, for the node's log."""
    env = os.environ if env is None else env
    rmw = env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    if rmw != 'rmw_fastrtps_cpp':
        return f'{rmw}: transport left as configured (the shared-memory stall guard is for Fast DDS)'
    for var in PROFILE_VARS:
        if env.get(var):
            return (f'Fast DDS profile {env[var]} from {var} (yours: make sure it does not use '
                    'shared memory for cmd_vel)')
    if env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '').upper() == 'LOCALHOST':
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
        profile = profile_dir() / LOCALHOST_PROFILE
    else:
        profile = profile_dir() / ANY_HOST_PROFILE
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
    return f'Fast DDS over UDP only ({profile.name}): no shared-memory publish stalls'
