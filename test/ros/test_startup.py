"""A node with a bad configuration refuses to start: exit code 2 and a message naming the field,
never a traceback and never a node running on defaults."""
from __future__ import annotations

import subprocess
import sys

import pytest

from test.conftest import CONFIG

pytestmark = pytest.mark.ros


def start(node: str, *ros_args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', f'flywheel.ros.{node}_node', '--ros-args',
         '--params-file', str(CONFIG / 'flywheel.yaml'), *ros_args],
        capture_output=True, text=True, timeout=timeout)


def test_malformed_oracle_spec(tmp_path):
    spec = (CONFIG / 'oracle_spec.yaml').read_text().replace('max_speed: 1.0 ', 'max_speed: -1.0 ')
    bad = tmp_path / 'spec.yaml'
    bad.write_text(spec)
    done = start('oracle', '-p', f'spec_path:={bad}')
    assert done.returncode == 2
    assert 'refusing to start: limits.max_speed: must be in (0.0, inf], got -1.0' in done.stderr
    assert 'Traceback' not in done.stderr


def test_missing_oracle_spec(tmp_path):
    done = start('oracle', '-p', f'spec_path:={tmp_path / "nowhere.yaml"}')
    assert done.returncode == 2 and 'cannot read' in done.stderr


def test_missing_policy(tmp_path):
    done = start('gate', '-p', f'policy_path:={tmp_path / "nowhere.yaml"}')
    assert done.returncode == 2 and 'cannot read' in done.stderr


def test_out_of_range_parameter():
    done = start('gate', '-p', 'command_timeout:=-1.0')
    assert done.returncode == 2 and 'command_timeout' in done.stderr


def test_parameter_of_the_wrong_type():
    done = start('sim', '-p', 'rate:=fast')
    assert done.returncode == 2 and 'rate' in done.stderr


def test_unknown_planner_plugin():
    done = start('proposer', '-p', 'planner_plugin:=no.such:Planner')
    assert done.returncode == 2 and "planner 'no.such:Planner'" in done.stderr


def test_unparseable_params_file(tmp_path):
    bad = tmp_path / 'params.yaml'
    bad.write_text('gate:\n  ros__parameters:\n    allowed_proposers: [a, 1.5]\n')
    done = subprocess.run([sys.executable, '-m', 'flywheel.ros.gate_node', '--ros-args',
                           '--params-file', str(bad)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and 'cannot initialise ROS' in done.stderr
