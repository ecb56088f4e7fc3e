"""Which DDS transport every flywheel process uses: UDP only, never Fast DDS shared memory.

Why: Fast DDS's shared-memory transport can block publish() for up to a second when a subscriber
dies holding its port mutex, or while a port health check runs (seen in gdb: SharedMemManager::
Port::try_push -> interprocess_mutex::lock). A blocked publish on cmd_vel would delay the Gate's
stop past its deadline. UDP sends (non-blocking) never wait on another process.

rmw_fastrtps builds its own transports (shared memory + UDP) when ROS_AUTOMATIC_DISCOVERY_RANGE is
LOCALHOST, so that case gets a profile that does the same host-only discovery over UDP, and the
range is handed to the profile. A user's own Fast DDS profile is always respected (and logged).

That profile finds peers on this host by announcing to a fixed range of participant ports (as
rmw_fastrtps's own LOCALHOST range does): two participants both beyond it never meet. A graph with
more participants than the range (a fleet: `flywheel up --robots N`) gets a copy of the profile
widened to fit (``widen_discovery``). It is not shipped wide: with 128 ports a new participant
took a median 1.4-1.9 s to be discovered here instead of 0.23 s.

Participants are created one at a time on a host (``creating_participant``): of 42 processes
each creating one at the same moment, 8-10 never discovered the others in 40 s (every other one
discovered them), on the widened profile as on the shipped one; created one at a time, all 42
found all 42, in three runs of three. Every participant flywheel creates takes that turn: the
nodes, the Gate's output process, the command-line tools (flywheel.ros.client) and the recorders.
"""
from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
LOCALHOST_PROFILE = 'localhost_udp.xml'
ANY_HOST_PROFILE = 'udp.xml'
PEERS_RANGE = re.compile(r'<maxInitialPeersRange>(\d+)</maxInitialPeersRange>')
WIDENED = re.compile(r'localhost_udp_\d+_peers\.xml')
# participants a graph leaves room for beyond its own: the operator's tools (flywheel status,
# ros2 topic echo, a recorder) started while it runs
TOOLS = 4
# longest wait for another process to create its participant (one frozen while holding the lock
# must not keep a node from starting at all: after this it goes ahead, and says so)
PARTICIPANT_LOCK_S = 30.0


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
        if env.get(var) and WIDENED.fullmatch(Path(env[var]).name):
            return (f'Fast DDS over UDP only ({Path(env[var]).name}, widened for this graph): '
                    'no shared-memory publish stalls')
        if env.get(var) and Path(env[var]).parent == profile_dir():
            # chosen by the flywheel process that started this one (a test, `flywheel demo`)
            return (f'Fast DDS over UDP only ({Path(env[var]).name}, shipped, chosen before this '
                    'process started): no shared-memory publish stalls')
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


def shipped_range() -> int:
    """The participant ports the shipped host-only profile announces to."""
    found = PEERS_RANGE.search((profile_dir() / LOCALHOST_PROFILE).read_text())
    if found is None:
        raise ValueError(f'{LOCALHOST_PROFILE}: no maxInitialPeersRange')
    return int(found.group(1))


def widened_profile(peers: int, directory: Path) -> Path:
    """A copy of the host-only profile announcing to ``peers`` participant ports, in
    ``directory``; nothing else of it changes."""
    text = (profile_dir() / LOCALHOST_PROFILE).read_text()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'localhost_udp_{peers}_peers.xml'
    path.write_text(PEERS_RANGE.sub(f'<maxInitialPeersRange>{peers}</maxInitialPeersRange>', text,
                                    count=1))
    return path


def widen_discovery(env: dict, participants: int, directory: Path) -> str | None:
    """Make room in ``env`` (a graph's environment, before its processes start) for
    ``participants`` DDS participants on this host plus the operator's tools, when the
    host-only profile would be chosen and its range is too narrow: write a copy of the profile
    announcing to enough ports into ``directory`` and point ``env`` at it. Returns what was done,
    for the log, or None when nothing had to be (another transport, a profile of the user's own,
    or a graph that fits)."""
    if (env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') != 'rmw_fastrtps_cpp'
            or any(env.get(var) for var in PROFILE_VARS)
            or env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '').upper() != 'LOCALHOST'):
        return None
    shipped = shipped_range()
    needed = participants + TOOLS
    if needed <= shipped:
        return None
    peers = -(-needed // 16) * 16
    path = widened_profile(peers, directory)
    # the profile does the host-only discovery itself; LOCALHOST would make rmw_fastrtps build
    # its own transports (shared memory included) over it
    env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(path)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
    return (f'{participants} DDS participants on this host: discovery widened from '
            f'{shipped} to {peers} participant ports ({path}; point your own tools at it '
            'with FASTDDS_DEFAULT_PROFILES_FILE to see every node)')


def participant_lock_path() -> Path:
    """One lock per user on this host (participant IDs and ports are per host)."""
    return Path(tempfile.gettempdir()) / f'alignment_flywheel-{os.getuid()}-participant.lock'


@contextmanager
def creating_participant(warn: Callable[[str], None]) -> Iterator[None]:
    """Hold the host's lock while this process creates its DDS participant. The lock is released
    when the process dies, even by kill -9; a holder that keeps it longer than
    PARTICIPANT_LOCK_S is passed over, with a ``warn``ing."""
    path = participant_lock_path()
    lock = open(path, 'a')
    taken, mutex = threading.Event(), threading.Lock()
    state = {'held': False, 'given_up': False}

    def take():          # a blocking flock, given up on after a while
        fcntl.flock(lock, fcntl.LOCK_EX)
        with mutex:
            if state['given_up']:
                lock.close()         # came too late: released at once
                return
            state['held'] = True
        taken.set()
    threading.Thread(target=take, daemon=True, name='participant_lock').start()
    taken.wait(PARTICIPANT_LOCK_S)
    with mutex:
        held = state['held']
        state['given_up'] = not held
    if not held:
        warn(f'another process has been creating its DDS participant for more than '
             f'{PARTICIPANT_LOCK_S:.0f} s ({path}): creating this one beside it, discovery may '
             'miss it')
    try:
        yield
    finally:
        if held:                 # else the waiting thread closes it when its flock returns
            lock.close()
