"""A node process follows the process that started it (the kill -9 of `flywheel up` itself is
test/ros/test_cli.py); here the cases a real `up` cannot time: a supervisor gone before the
node asks to follow it, and no supervisor at all."""
from __future__ import annotations

import os
import subprocess
import sys

from flywheel.supervisor import ENV, supervised_env

CHILD = '''
import os
from flywheel.supervisor import ENV, follow_supervisor
stopped = []
print(follow_supervisor(lambda: stopped.append(True)), stopped, ENV in os.environ)
'''


def child(env: dict) -> str:
    return subprocess.run([sys.executable, '-c', CHILD], env=env, capture_output=True,
                          text=True, check=True, timeout=30).stdout


def test_a_node_whose_supervisor_died_before_it_asked_stops_at_once():
    # pid 1 is never this child's parent: as if `up` died between the fork and the prctl
    out = child({**os.environ, ENV: '1'})
    assert out.startswith('supervisor 1 is gone: stopping [True]')
    assert out.rstrip().endswith('False')       # its own children do not inherit it


def test_a_supervised_node_follows_its_parent_and_an_unsupervised_one_nothing():
    assert child(supervised_env(None)).startswith(
        f'stops when its supervisor (pid {os.getpid()}) dies [] False')
    assert child({k: v for k, v in os.environ.items() if k != ENV}).startswith('None [] False')
