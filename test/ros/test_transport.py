"""A graph with more DDS participants on one host than the shipped host-only profile announces to
(a fleet) discovers itself on the widened copy `flywheel up` writes: the last two of them, both
beyond the shipped range, meet. (On the shipped profile they do not: participants beyond its range
only ever learn of those within it.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flywheel.ros.transport import (PROFILE_VARS, creating_participant, participant_lock_path,
                                    widen_discovery)

pytestmark = pytest.mark.ros

PARTICIPANTS = 40

# One process, one context (so one participant) per node; exits 0 once the last two nodes see
# each other, 1 if they have not within the deadline.
MANY = '''
import sys, time
import rclpy
from rclpy.context import Context
from flywheel.ros.transport import configure_transport
print(configure_transport(), flush=True)
count, nodes = int(sys.argv[1]), []
try:
    for i in range(count):
        context = Context()
        rclpy.init(context=context, args=[])
        nodes.append(rclpy.create_node(f'participant_{i}', context=context))
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if (f'participant_{count - 2}' in nodes[-1].get_node_names()
                and f'participant_{count - 1}' in nodes[-2].get_node_names()):
            print('met', flush=True)
            sys.exit(0)
        time.sleep(0.1)
    print('the last two saw', len(nodes[-1].get_node_names()), 'and',
          len(nodes[-2].get_node_names()), 'nodes', flush=True)
    sys.exit(1)
finally:
    for node in nodes:
        node.destroy_node()
        node.context.try_shutdown()
'''


def test_participants_beyond_the_shipped_range_meet_on_the_widened_profile(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS}
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    assert widen_discovery(env, PARTICIPANTS, tmp_path) is not None
    process = subprocess.Popen([sys.executable, '-c', MANY, str(PARTICIPANTS)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out
    assert 'widened for this graph' in out and 'met' in out


def _waiting_for_lock(pid: int, lock: Path) -> bool:
    """Whether process ``pid`` is blocked on the flock of ``lock`` (a ``->`` line of
    /proc/locks: ``1: -> FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF``)."""
    inode = os.stat(lock).st_ino
    for line in Path('/proc/locks').read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == '->' and fields[5] == str(pid) and \
                fields[6].rsplit(':', 1)[-1] == str(inode):
            return True
    return False


def _has_socket(pid: int) -> bool:
    fd_dir = Path(f'/proc/{pid}/fd')
    return any(os.readlink(fd).startswith('socket:') for fd in fd_dir.iterdir())


@pytest.mark.skipif(not Path('/proc/locks').exists(), reason='needs /proc/locks (Linux)')
def test_a_command_line_tool_creates_its_participant_one_at_a_time_with_the_nodes():
    """`flywheel status` started while another process creates its participant waits for it
    before creating its own: created at the same moment as a starting graph's, its participant
    could miss the graph's nodes for good (seen: a `release push` that never found governance)."""
    tool = None
    with creating_participant(pytest.fail):
        try:
            tool = subprocess.Popen([sys.executable, '-m', 'flywheel.cli', 'status', '--timeout',
                                     '1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            deadline = time.monotonic() + 30.0
            while not _waiting_for_lock(tool.pid, participant_lock_path()):
                assert tool.poll() is None, tool.communicate()
                assert time.monotonic() < deadline, 'the tool never asked for the lock'
                time.sleep(0.05)
            assert not _has_socket(tool.pid)          # no participant while the lock is held
        except BaseException:
            if tool is not None:
                tool.kill()
                tool.wait()
            raise
    try:
        _, err = tool.communicate(timeout=60)
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    assert tool.returncode == 3 and 'no governance node answers' in err, err
