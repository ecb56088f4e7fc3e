"""Real-node fixtures: a probe node in this process (its own context) and node graphs started as
separate processes, always stopped at teardown, even when the test fails."""
from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from typing import Callable

import pytest

rclpy = pytest.importorskip('rclpy')

from geometry_msgs.msg import Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg  # noqa: E402
from alignment_flywheel.msg import SafetySignals as SignalsMsg  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.oracle.oracle import Oracle  # noqa: E402
from flywheel.proposal import ProposalLimits  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import signals_to_msg, to_time  # noqa: E402
from flywheel.auth import load_message_key  # noqa: E402
from flywheel.ros.transport import configure_transport, creating_participant  # noqa: E402
from flywheel.wire import decode_proposal, encode_proposal  # noqa: E402
from test.conftest import CONFIG, KEYS  # noqa: E402
from test.helpers import straight  # noqa: E402

configure_transport()      # the test process talks to the nodes as they talk to each other


class Probe:
    """A node the test drives: publish, collect, and spin until a condition holds."""

    def __init__(self, context: Context):
        self.node = rclpy.create_node('probe', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def collect(self, msg_type, topic: str, qos, stamp: bool = False) -> list:
        """Every message received on topic (with its arrival time if ``stamp``)."""
        received: list = []
        callback = ((lambda m: received.append((time.monotonic(), m))) if stamp
                    else received.append)
        self.node.create_subscription(msg_type, topic, callback, qos)
        return received

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.01)
        return True

    def spin_for(self, seconds: float) -> None:
        """Keep receiving for a while (to show that something does NOT arrive)."""
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()


@pytest.fixture
def probe():
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ['ROS_DOMAIN_ID']), args=[])
    with creating_participant(print):     # one at a time with the nodes (transport.py)
        probe = Probe(context)
    try:
        yield probe
    finally:
        probe.close()
        context.try_shutdown()


@pytest.fixture
def start_graph(tmp_path):
    """start_graph(nodes, overrides) -> Graph; every graph is stopped at teardown."""
    graphs = []

    def start(nodes, overrides=None, params=CONFIG / 'flywheel.yaml') -> Graph:
        graph = Graph(tuple(nodes), params, overrides or {}, None, tmp_path / 'logs')
        graphs.append(graph)
        return graph.start()

    yield start
    for graph in graphs:
        graph.stop()


class OdometryFeed:
    """Publishes the robot's odometry at 50 Hz from its own thread (stamped now), as a base
    would, whatever the test's thread is doing; pause() makes it stale."""

    def __init__(self, probe: Probe, x: float, y: float, yaw: float, frame: str = 'map'):
        self.pub = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
        self.probe, self.pose, self.frame = probe, (x, y, yaw), frame
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            if self._paused.is_set():
                continue
            msg = Odometry()
            msg.header.stamp = to_time(self.probe.now_ns())
            msg.header.frame_id = self.frame
            x, y, yaw = self.pose
            msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
            msg.pose.pose.orientation.z = math.sin(yaw / 2)
            msg.pose.pose.orientation.w = math.cos(yaw / 2)
            try:
                self.pub.publish(msg)
            except Exception:  # noqa: BLE001 - the probe is being torn down
                return

    def pause(self) -> None:
        self._paused.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class GateIO:
    """A Gate process and a probe that drives it: proposals (as bytes), verdicts from the real
    Oracle core (numbered and stamped as the Oracle node does), odometry, and what comes back."""

    START = (1.5, 1.0, 0.0)

    def __init__(self, probe, graph, spec, command_type):
        self.probe, self.graph = probe, graph
        self.proposals = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
        self.signals = probe.node.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
        self.commands = probe.collect(command_type, topics.CMD_VEL, qos.COMMAND)
        self.decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
        self.oracle = Oracle(spec, ProposalLimits())
        self.oracle_key = load_message_key(KEYS / 'oracle.pem')
        self.proposer_key = load_message_key(KEYS / 'proposer.pem')
        self.odometry = OdometryFeed(probe, *self.START)
        self.epoch = time.time_ns()
        self.raw: dict[str, bytes] = {}       # the signed bytes of every proposal made
        self.seq = 0
        self.verdict_seq = 0

    @classmethod
    def start(cls, probe, start_graph, spec, gate_params=None, command_type=Twist) -> 'GateIO':
        graph = start_graph(['gate'], {'gate': gate_params or {}})
        io = cls(probe, graph, spec, command_type)
        wait_matched(probe, io.proposals)
        wait_matched(probe, io.signals)
        assert probe.spin_until(lambda: io.commands, 20.0), 'the gate never published'
        io.handshake()
        return io

    def make(self, **kwargs):
        self.seq += 1
        x, y, yaw = kwargs.pop('x', self.START[0]), kwargs.pop('y', self.START[1]), self.START[2]
        p = straight(x, y, yaw, kwargs.pop('v', 0.5), seq=kwargs.pop('seq', self.seq),
                     stamp_ns=self.probe.now_ns(), **kwargs)
        p, self.raw[p.proposal_id] = signed_bytes(dataclasses.replace(p, epoch=self.epoch),
                                                  self.proposer_key)
        return p

    def propose(self, **kwargs):
        p = self.make(**kwargs)
        self.proposals.publish(self.raw[p.proposal_id])
        return p

    def verdict(self, p, sign: bool = True, **changes) -> SignalsMsg:
        """Publish the Oracle's verdict on p (see verdict_msg)."""
        msg = self.verdict_msg(p, sign, **changes)
        self.signals.publish(msg)
        return msg

    def verdict_msg(self, p, sign: bool = True, **changes) -> SignalsMsg:
        """The Oracle's verdict on p, with ``changes`` made before it is signed (as an Oracle
        that says so would), or unsigned."""
        self.verdict_seq += 1
        changes.setdefault('stamp_ns', self.probe.now_ns())
        v = dataclasses.replace(self.oracle.evaluate(p), epoch=self.epoch, seq=self.verdict_seq,
                                **changes)
        if sign:
            v = sign_signals(v, self.oracle_key)
        return signals_to_msg(v, 'map')

    def decisions_for(self, p) -> list:
        return [d for d in self.decisions if d.proposal_id == p.proposal_id]

    def handshake(self) -> None:
        """Discovery is not symmetric: make sure the Gate hears both our proposals and our
        verdicts (an untrusted proposer and a verdict for no proposal are each decided at once)
        before the test sends anything that counts."""
        for topic in ('proposals', 'signals'):
            for _ in range(100):
                ghost = self.make(proposer_id='handshake')
                if topic == 'proposals':
                    self.proposals.publish(self.raw[ghost.proposal_id])
                else:
                    self.verdict(ghost)
                if self.probe.spin_until(lambda: self.decisions_for(ghost), 0.3):
                    break
            else:
                raise AssertionError(f'the gate never heard our {topic}')
        self.decisions.clear()


def signed_bytes(p, key) -> tuple:
    """(the proposal as the Gate will read it, the bytes to publish)."""
    raw = encode_proposal(p, key)
    return decode_proposal(raw), raw


def sign_signals(s, key):
    return dataclasses.replace(s, key_id=key.key_id, signature=key.sign(s.canonical_bytes()))


def decision_for(io: GateIO, p, timeout: float = 5.0):
    """The PROPOSAL decision for p (waits for it)."""
    def found():
        return [d for d in io.decisions_for(p) if d.subject == GateDecision.SUBJECT_PROPOSAL]
    assert io.probe.spin_until(found, timeout), f'no decision for {p.proposal_id}'
    return found()[0]


def moving(commands) -> list:
    twists = [getattr(c, 'twist', c) for c in commands]
    return [t for t in twists if t.linear.x != 0.0 or t.angular.z != 0.0]


@pytest.fixture
def gate_io(probe, start_graph, spec):
    io = GateIO.start(probe, start_graph, spec)
    yield io
    io.odometry.close()


def health(reports, role: str) -> list:
    """``role``'s statuses ('gate', 'oracle', ...) in collected /diagnostics reports, oldest
    first."""
    name = f'alignment_flywheel: {role}'
    return [s for r in reports for s in r.status if s.name == name]


def values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def wait_matched(probe: Probe, entity, timeout: float = 20.0) -> None:
    """Block until a publisher has a subscriber (or a subscription a publisher)."""
    count = (entity.get_subscription_count if hasattr(entity, 'get_subscription_count')
             else entity.get_publisher_count)
    assert probe.spin_until(lambda: count() > 0, timeout), f'nothing matched {entity.topic_name}'
