"""`flywheel up` and `flywheel demo` as a user runs them: real processes, real signals."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from nav_msgs.msg import Odometry

from alignment_flywheel.msg import GateDecision
from flywheel.ros import qos, topics

pytestmark = pytest.mark.ros


def flywheel(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'flywheel.cli', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone as far as ROS is concerned
    with open(f'/proc/{pid}/stat') as stat:
        return stat.read().split(') ')[1][0] != 'Z'


def test_up_runs_the_graph_and_ctrl_c_stops_every_node(probe):
    odom = probe.collect(Odometry, topics.ODOM, qos.SENSOR)
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    up = flywheel('up')
    pids, out, err = [], '', ''
    try:
        assert probe.spin_until(
            lambda: odom and any(d.action == GateDecision.ACTION_ALLOW for d in decisions), 60.0)
        moved = probe.spin_until(lambda: odom[-1].pose.pose.position.x > 1.6, 10.0)
        assert moved, 'the robot did not move under gated commands'
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=30)
        pids = [int(p) for p in re.findall(r'pid (\d+)', out)]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 0, f'{out}\n{err}'
    assert len(pids) == 7 and 'all nodes stopped' in out      # six nodes and the manager
    assert not [p for p in pids if alive(p)]


def test_up_stops_the_graph_when_a_managed_node_leaves_active(probe):
    """The Oracle is deactivated behind the lifecycle manager's back (ros2 lifecycle set oracle
    deactivate): its heartbeat sees it, deactivates the Gate (stop) and ends, and `up` takes the
    whole graph down with exit code 1 rather than running on without a scorer."""
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    up = flywheel('up', '--only', 'sim,oracle,gate,proposer')
    try:
        assert probe.spin_until(
            lambda: any(d.action == GateDecision.ACTION_ALLOW for d in decisions), 60.0)
        change = probe.node.create_client(ChangeState, '/oracle/change_state')
        assert change.wait_for_service(timeout_sec=10)
        future = change.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        assert probe.spin_until(future.done, 10.0) and future.result().success
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 1
    assert 'lifecycle_manager exited with 1' in err


def test_up_rejects_an_unknown_node():
    up = flywheel('up', '--only', 'oracle,teleporter')
    _, err = up.communicate(timeout=30)
    assert up.returncode == 2 and "unknown node 'teleporter'" in err


@pytest.mark.slow
def test_demo_writes_a_report_and_the_gated_run_has_no_collision(tmp_path):
    demo = flywheel('demo', '--duration', '8', '--out', str(tmp_path))
    out, err = demo.communicate(timeout=180)
    assert demo.returncode == 0, out + err
    summary = json.loads((tmp_path / 'summary.json').read_text())
    gated, bypass = summary['runs']
    assert gated['mode'] == 'gated' and bypass['mode'] == 'bypass'
    assert gated['collisions'] == 0 and gated['proposals'] > 40
    # every proposal the recorder saw got exactly one decision (the demo waits out those in flight)
    assert gated['undecided'] == 0
    assert sum(gated['decisions'].values()) == gated['proposals']
    assert (tmp_path / 'map.png').read_bytes()[:4] == b'\x89PNG'
    assert 'decisions BLOCK' in out and 'OK: no collision with the Gate on' in out
    assert 'ledger: ' in out and 'chain intact' in out
