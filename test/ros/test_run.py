"""A node's ROS teardown is bounded even when it hangs inside a C call that keeps the GIL (as
Fast DDS did in 3 of about 250 stops under `make stress`): the stacks are printed and the kernel
ends the process with SIGALRM, which `flywheel up` reports as a teardown cut short. A node or
a command-line tool that crashes prints where."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from flywheel.ros.run import TEARDOWN_S

pytestmark = pytest.mark.ros

STUCK = '''
import ctypes, sys
from rclpy.node import Node
from flywheel.ros.run import run_node

class Stuck(Node):
    def __init__(self):
        super().__init__('stuck')
        print('built', flush=True)

    def destroy_node(self):
        ctypes.PyDLL(None).sleep(60)     # libc sleep(), called with the GIL held

sys.exit(run_node('stuck', Stuck, ['stuck']))
'''


def test_a_teardown_that_hangs_with_the_gil_held_is_cut_short_with_its_stacks():
    node = subprocess.Popen([sys.executable, '-c', STUCK], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert node.stdout.readline() == 'built\n'
        stopped = time.monotonic()
        node.send_signal(signal.SIGINT)
        _, err = node.communicate(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert node.returncode == -signal.SIGALRM, err
    assert TEARDOWN_S <= took < TEARDOWN_S + 3.0
    assert 'Timeout' in err and 'in destroy_node' in err      # faulthandler's stacks


CRASHES = '''
import ctypes, sys
from rclpy.node import Node
from flywheel.ros.run import run_node

class Crashes(Node):
    def __init__(self):
        super().__init__('crashes')
        ctypes.string_at(0)              # a segfault, as inside a DDS library

sys.exit(run_node('crashes', Crashes, ['crashes']))
'''


def test_a_node_that_crashes_prints_where():
    node = subprocess.run([sys.executable, '-c', CRASHES], capture_output=True, text=True,
                          timeout=60)
    assert node.returncode == -signal.SIGSEGV, node.stderr
    assert 'Segmentation fault' in node.stderr and 'in __init__' in node.stderr, node.stderr


def test_a_command_line_tool_that_crashes_prints_where():
    """flywheel's main() turns the stacks on for whatever runs after it starts (a `release push`
    died so once, in its DDS calls, and left nothing)."""
    tool = subprocess.run([sys.executable, '-c', 'import ctypes; from flywheel.cli.main import '
                           'main; main(["--help"]); ctypes.string_at(0)'],
                          capture_output=True, text=True, timeout=60)
    assert tool.returncode == -signal.SIGSEGV, tool.stderr
    assert 'Segmentation fault' in tool.stderr, tool.stderr
