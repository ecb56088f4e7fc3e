"""A fleet under one governance: three robots in namespaces, each with its own Oracle and Gate.
A good candidate runs canary on the first robot while the others shadow it, then goes full on
all; a candidate that would approve a collision on any one robot is aborted fleet-wide."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from nav_msgs.msg import Odometry

from alignment_flywheel.msg import GovernanceEvent, OracleStatus
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.auth import load_message_key
from flywheel.cli.graph import fleet
from flywheel.ros import qos, topics
from flywheel.ros.convert import to_time
from flywheel.wire import encode_proposal
from test.conftest import CONFIG, KEYS
from test.helpers import straight
from test.ros.test_rollout import PLAN, desk, flywheel, spec  # noqa: F401 - desk: the fixture

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROBOTS = ['/robot_0', '/robot_1', '/robot_2']


class Robot:
    """A stand-in base for one namespaced robot: odometry and signed proposals at 50 Hz."""

    def __init__(self, probe, ns: str, x: float, y: float, v: float):
        self.ns, self.start = ns, (x, y, v)
        self.proposals = probe.node.create_publisher(ProposalMsg, f'{ns}/{topics.PROPOSALS}',
                                                     qos.STREAM)
        self.odometry = probe.node.create_publisher(Odometry, f'{ns}/{topics.ODOM}', qos.SENSOR)
        self.statuses = probe.collect(OracleStatus, f'{ns}/{topics.ORACLE_STATUS}', qos.STATUS)
        self.key, self.epoch, self.seq = load_message_key(KEYS / 'proposer.pem'), time.time_ns(), 0
        self.probe = probe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        x, y, v = self.start
        while not self._stop.wait(0.02):
            odom = Odometry()
            odom.header.frame_id, odom.header.stamp = 'map', to_time(self.probe.now_ns())
            odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
            odom.pose.pose.orientation.w = 1.0
            self.seq += 1
            p = dataclasses.replace(straight(x, y, 0.0, v, seq=self.seq,
                                             stamp_ns=self.probe.now_ns()), epoch=self.epoch)
            try:
                self.odometry.publish(odom)
                self.proposals.publish(encode_proposal(p, self.key))
            except Exception:  # noqa: BLE001 - torn down
                return

    def status(self):
        return self.statuses[-1] if self.statuses else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


@pytest.fixture
def fleet_graph(probe, desk):  # noqa: F811
    tmp_path, release = desk
    root = str(tmp_path / 'root.json')
    graphs = fleet(('oracle', 'gate', 'governance'), CONFIG / 'flywheel.yaml', ROBOTS,
                   log_dir=tmp_path / 'logs', overrides={
                       'governance': {'store_dir': str(tmp_path / 'store'),
                                      'trust_root_path': root},
                       'oracle': {'trust_root_path': root},
                       'gate': {'trust_root_path': root}})
    robots = []
    first = probe.collect(OracleStatus, f'{ROBOTS[0]}/{topics.ORACLE_STATUS}', qos.STATUS)
    try:
        for g in graphs:
            g.start()
        # the lifecycle manager brings governance up: wait until it says it is active
        assert probe.spin_until(lambda: first and first[-1].state == 'active', 60.0)
        assert flywheel('release', 'push', str(release(1, spec('1.0.0'))), '--timeout',
                        '60').returncode == 0
        yield robots, release, tmp_path
    finally:
        for r in robots:
            r.close()
        for g in reversed(graphs):
            g.stop()


def test_a_fleet_runs_canary_on_k_robots_then_goes_full_on_all(probe, fleet_graph):
    robots, release, _ = fleet_graph
    robots += [Robot(probe, ns, 1.5, 1.0, 0.5) for ns in ROBOTS]
    assert probe.spin_until(lambda: all(r.statuses for r in robots), 30.0)   # we hear them all
    assert flywheel('release', 'push', str(release(2, spec('1.1.0'), PLAN % b'1.5')),
                    '--timeout', '60').returncode == 0
    first, *others = robots

    def canary_on_first_only():
        stages = [r.status() and r.status().stage for r in robots]
        return stages == [OracleStatus.STAGE_CANARY] + [OracleStatus.STAGE_SHADOW] * 2
    assert probe.spin_until(canary_on_first_only, 60.0), [r.status() for r in robots]
    assert probe.spin_until(lambda: all(r.status().active_version == '1.1.0'
                                        and not r.status().candidate_version for r in robots),
                            60.0)


def test_an_unsafe_candidate_on_one_robot_is_aborted_fleet_wide(probe, fleet_graph):
    robots, release, _ = fleet_graph
    robots += [Robot(probe, '/robot_0', 1.5, 1.0, 0.5), Robot(probe, '/robot_1', 1.5, 1.0, 0.5),
               Robot(probe, '/robot_2', 3.0, 4.0, 0.9)]        # robot_2 drives into shelf_a
    assert probe.spin_until(lambda: all(r.statuses for r in robots), 30.0)   # we hear them all
    assert flywheel('release', 'push', str(release(2, spec('1.1.0', without_shelf=True),
                                                   PLAN % b'1.5')),
                    '--timeout', '60').returncode == 0
    # staged (governance's event stream keeps its history: no race with a quick abort) ...
    events = probe.collect(GovernanceEvent, topics.GOVERNANCE_EVENTS, qos.RECORDS)
    assert probe.spin_until(lambda: GovernanceEvent.EVENT_ABORTED in {e.event for e in events},
                            60.0)
    kinds = [e.event for e in events]
    assert kinds.index(GovernanceEvent.EVENT_STAGE_STARTED) < kinds.index(
        GovernanceEvent.EVENT_ABORTED)
    aborted = next(e for e in events if e.event == GovernanceEvent.EVENT_ABORTED)
    assert 'unsafe' in aborted.reason
    # ... and aborted on every robot, though only robot_2 met the collision
    assert probe.spin_until(lambda: all(r.status().active_version == '1.0.0'
                                        and not r.status().candidate_version for r in robots),
                            60.0)
