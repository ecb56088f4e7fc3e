"""Shared fixtures. Every test run gets its own ROS domain and keeps discovery on this host, so
tests never hear (or disturb) another graph on the machine."""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

os.environ['ROS_DOMAIN_ID'] = str(100 + os.getpid() % 100)
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# ROS logs and the audit node's default ledger go to a scratch home, not the user's ~/.ros
os.environ['ROS_HOME'] = tempfile.mkdtemp(prefix='flywheel-test-ros-home-')

# ... and the robot's keys and trust root where every node looks by default (flywheel keys init).
from flywheel.provision import default_key_dir, provision  # noqa: E402

KEYS = provision(default_key_dir(), datetime.now(timezone.utc)).directory

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config'


@pytest.fixture(scope='session')
def spec():
    from flywheel.oracle.spec import load_spec
    return load_spec(CONFIG / 'oracle_spec.yaml')


@pytest.fixture(scope='session')
def policy():
    from flywheel.enforcement.policy import load_policy
    return load_policy(CONFIG / 'policy.yaml')
