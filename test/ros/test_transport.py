"""A graph with more DDS participants on one host than the shipped host-only profile announces to
(a fleet) discovers itself on the widened copy `flywheel up` writes: the last two of them, both
beyond the shipped range, meet. (On the shipped profile they do not: participants beyond its range
only ever learn of those within it.)"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flywheel.ros.transport import PROFILE_VARS, widen_discovery

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
