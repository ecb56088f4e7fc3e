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


class Up:
    """`flywheel up ...` as a user runs it, its output in files: a pipe that nobody reads while
    the test waits would fill, and every node writing to it would block. Leaving the ``with``
    block, however the test ended, it is asked to stop as Ctrl-C does (it stops its nodes) and
    killed only if it does not; a failed test prints its output."""

    def __init__(self, tmp_path, *args: str):
        self.args = args
        self.paths = tmp_path / 'up.out', tmp_path / 'up.err'
        self.files = [open(path, 'w') for path in self.paths]
        self.process = subprocess.Popen([sys.executable, '-m', 'flywheel.cli', 'up', *args],
                                        stdout=self.files[0], stderr=self.files[1], text=True)

    def out(self) -> str:
        return self.paths[0].read_text()

    def err(self) -> str:
        return self.paths[1].read_text()

    def pids(self) -> list[int]:
        return [int(p) for p in re.findall(r'pid (\d+)', self.out())]

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> 'Up':
        return self

    def __exit__(self, failed, *_) -> None:
        self.stop()
        for f in self.files:
            f.close()
        if failed:
            print(f'flywheel up {" ".join(self.args)}: exit {self.process.returncode}\n'
                  f'{self.out()}\n{self.err()}')


def test_up_runs_the_graph_and_ctrl_c_stops_every_node(probe, tmp_path):
    odom = probe.collect(Odometry, topics.ODOM, qos.SENSOR)
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    with Up(tmp_path) as up:
        assert probe.spin_until(
            lambda: odom and any(d.action == GateDecision.ACTION_ALLOW for d in decisions), 60.0)
        moved = probe.spin_until(lambda: odom[-1].pose.pose.position.x > 1.6, 10.0)
        assert moved, 'the robot did not move under gated commands'
        assert up.stop() == 0, up.err()
        pids = up.pids()
        assert len(pids) == 7 and 'all nodes stopped' in up.out()   # six nodes and the manager
        assert not [p for p in pids if alive(p)]


def test_up_stops_the_graph_when_a_managed_node_leaves_active(probe, tmp_path):
    """The Oracle is deactivated behind the lifecycle manager's back (ros2 lifecycle set oracle
    deactivate): its heartbeat sees it, deactivates the Gate (stop) and ends, and `up` takes the
    whole graph down with exit code 1 rather than running on without a scorer."""
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    with Up(tmp_path, '--only', 'sim,oracle,gate,proposer') as up:
        assert probe.spin_until(
            lambda: any(d.action == GateDecision.ACTION_ALLOW for d in decisions), 60.0)
        change = probe.node.create_client(ChangeState, '/oracle/change_state')
        assert change.wait_for_service(timeout_sec=10)
        future = change.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        assert probe.spin_until(future.done, 10.0) and future.result().success
        up.process.wait(timeout=60)
        assert up.process.returncode == 1
        assert 'lifecycle_manager exited with 1' in up.err()


def test_a_killed_up_takes_its_nodes_with_it(probe, tmp_path):
    """kill -9 of `flywheel up` (the OOM killer, a cleanup): its nodes stop as on Ctrl-C, each
    through its own way out (the Gate says stop), instead of running on headless on the domain."""
    pids = []
    try:
        with Up(tmp_path, '--only', 'oracle,gate') as up:
            nodes = ('oracle', 'gate', 'lifecycle_manager')
            # each says it follows `up` once it does (the kernel is told before the participant)
            assert probe.spin_until(lambda: all(
                f'[{node}]: stops when its supervisor' in up.err() for node in nodes), 60.0)
            pids = up.pids()
            assert len(pids) == 3          # two nodes and the manager
            up.process.kill()
            up.process.wait()
            assert probe.spin_until(lambda: not [p for p in pids if alive(p)], 20.0), \
                [p for p in pids if alive(p)]
            # the nodes still write to the file `up` gave them: each was asked to stop
            for node in nodes:
                assert f'[{node}]: stopping: SIGINT' in up.err(), node
    finally:
        for pid in pids:           # this test's own nodes, if they outlived it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


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
