"""The Gate's deadline against what broke it before: a killed or frozen Oracle, cmd_vel
subscribers killed and restarted (Fast DDS shared-memory publish stalls), an oversize proposal
right after an approval, a flood. In every case no command is honoured longer than
command_timeout after the decision that approved it, and the stop follows within one tick,
measured by the Gate's own stamps (TwistStamped: when each command was sent) and by the time DDS
delivered it here (so neither the Gate's nor this process's scheduling can hide a late stop)."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg
from flywheel.auth import load_message_key
from flywheel.ros import qos, topics
from flywheel.ros.convert import from_time
from flywheel.wire import encode_proposal
from test.helpers import straight
from test.conftest import KEYS
from test.ros.conftest import OdometryFeed, wait_matched

pytestmark = [pytest.mark.ros, pytest.mark.slow]

COMMAND_TIMEOUT, TICK = 0.3, 0.02       # config/flywheel.yaml
BUDGET_NS = int((COMMAND_TIMEOUT + TICK) * 1e9)
# Keep every command the Gate sends even while this thread is busy (a base keeps only the last).
EVERY_COMMAND = QoSProfile(depth=10_000, reliability=ReliabilityPolicy.RELIABLE)
START = (1.5, 1.0, 0.0)


class Stream:
    """Proposals at 50 Hz from a thread of their own (so receiving here never delays sending)."""

    def __init__(self, probe, publisher, rate: float = 50.0):
        self.probe, self.pub, self.period = probe, publisher, 1.0 / rate
        self.key = load_message_key(KEYS / 'proposer.pem')
        self.epoch, self.seq = time.time_ns(), 0
        self.sent: dict[str, int] = {}
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self._running.is_set():
                self.seq += 1
                p = dataclasses.replace(
                    straight(*START, 0.5, seq=self.seq, stamp_ns=self.probe.now_ns()),
                    epoch=self.epoch)
                self.sent[p.proposal_id] = p.seq
                try:
                    self.pub.publish(encode_proposal(p, self.key))
                except Exception:  # noqa: BLE001 - torn down
                    return
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def resume(self) -> None:
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


@pytest.fixture
def loop(probe, start_graph):
    graph = start_graph(['oracle', 'gate'], {'gate': {'stamped': True}})
    odometry = OdometryFeed(probe, *START)
    commands: list = []     # (received ns, Gate's send stamp ns, v)
    probe.node.create_subscription(
        TwistStamped, topics.CMD_VEL,
        lambda m, info: commands.append((info['received_timestamp'], from_time(m.header.stamp),
                                         m.twist.linear.x)), EVERY_COMMAND)
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    wait_matched(probe, pub)
    assert probe.spin_until(lambda: pub.get_subscription_count() >= 2, 20.0)
    stream = Stream(probe, pub)
    stream.resume()
    assert probe.spin_until(lambda: sum(v != 0 for _, _, v in commands) >= 10, 30.0), \
        'the loop never got going'
    yield graph, stream, commands, decisions, pub
    stream.close()
    odometry.close()


def approvals_ns(decisions) -> list[int]:
    return sorted(from_time(d.header.stamp) for d in decisions
                  if d.subject == GateDecision.SUBJECT_PROPOSAL and d.command_published
                  and d.action in (GateDecision.ACTION_ALLOW, GateDecision.ACTION_DEGRADE))


def assert_no_command_outlives_its_approval(probe, commands, decisions) -> None:
    """Every moving command was sent (Gate stamp) within command_timeout + one tick of an
    approving decision before it. Commands and decisions come from different processes (the
    output process, the Gate), so a command can be received before the decision that approved
    it: a violation counts only once the reliable decision stream has had time to deliver."""
    def violations() -> list[str]:
        approved = approvals_ns(decisions)
        if not approved:
            return ['nothing was approved']
        found = []
        for _, sent, v in list(commands):
            if v == 0.0:
                continue
            before = [a for a in approved if a <= sent]
            if not before:
                found.append(f'a command sent at {sent} before any approval')
            elif sent - before[-1] > BUDGET_NS:
                found.append(f'sent {(sent - before[-1]) / 1e6:.1f} ms after')
        return found
    probe.spin_until(lambda: not violations(), 5.0)
    assert not violations(), violations()


def stop_after_last_approval(probe, commands, decisions) -> int:
    """Wait until the Gate has said stop for a whole budget after the last approval (so nothing
    is still in flight); return how long after that approval the first stop was sent (ns)."""
    def settled():
        approved = approvals_ns(decisions)
        return approved and any(v == 0.0 and sent > approved[-1] + BUDGET_NS
                                for _, sent, v in commands)
    assert probe.spin_until(settled, 10.0), 'no stop after the last approval'
    last = approvals_ns(decisions)[-1]
    return min(sent for _, sent, v in commands if v == 0.0 and sent > last) - last


def test_a_killed_oracle_stops_the_robot_within_the_deadline(probe, loop):
    graph, _, commands, decisions, _ = loop
    os.kill(graph.processes['oracle'].pid, signal.SIGKILL)
    graph.processes['oracle'].wait(timeout=5)
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)


def test_a_frozen_oracle_stops_the_robot_within_the_deadline(probe, loop):
    graph, _, commands, decisions, _ = loop
    oracle = graph.processes['oracle']
    os.kill(oracle.pid, signal.SIGSTOP)
    try:
        assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
        assert_no_command_outlives_its_approval(probe, commands, decisions)
    finally:
        os.kill(oracle.pid, signal.SIGCONT)


SUBSCRIBER = '''
import rclpy, sys
from geometry_msgs.msg import TwistStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
rclpy.init()
node = rclpy.create_node('cmd_vel_listener')
node.create_subscription(TwistStamped, 'cmd_vel', lambda m: None, 1)
print('up', flush=True)
rclpy.spin(node)
'''


def test_killed_cmd_vel_subscribers_never_delay_the_gate(probe, loop):
    """Each listener below uses the default transports (shared memory included) and is killed
    with SIGKILL while the Gate publishes to it: a shared-memory port mutex left locked by a dead
    peer stalled the Gate's publish for a second."""
    graph, stream, commands, decisions, _ = loop
    env = {k: v for k, v in os.environ.items() if k != 'FASTDDS_DEFAULT_PROFILES_FILE'}
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    for _ in range(int(os.environ.get('KILLS', 6))):
        listener = subprocess.Popen([sys.executable, '-c', SUBSCRIBER], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert listener.stdout.readline() == b'up\n'
            seen = len(commands)
            assert probe.spin_until(lambda: len(commands) >= seen + 10, 10.0)
        finally:
            listener.kill()
            listener.wait(timeout=5)
    stream.pause()
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)
    going = min(s for _, s, v in commands if v != 0.0)     # from the loop's first command on
    sent = sorted(s for _, s, _ in commands if s >= going)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert max(gaps) <= 4 * TICK * 1e9, f'cmd_vel silent for {max(gaps) / 1e6:.0f} ms'


def test_an_oversize_proposal_after_an_approval_withdraws_it_at_once(probe, loop):
    _, stream, commands, decisions, pub = loop
    stream.pause()
    probe.spin_for(0.05)
    huge = straight(*START, 0.5, points=100_000, seq=10**6, stamp_ns=probe.now_ns())
    pub.publish(encode_proposal(dataclasses.replace(huge, epoch=stream.epoch)))

    def refused():
        return [d for d in decisions if GateDecision.REASON_OVERSIZE in d.reasons]
    assert probe.spin_until(refused, 5.0)
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)


def test_a_flood_is_decided_not_dropped_and_the_deadline_holds(probe, loop):
    _, stream, commands, decisions, pub = loop
    flood_epoch, flooded = time.time_ns(), []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:           # ~1 kHz from this thread, on top of the stream
        p = dataclasses.replace(straight(*START, 0.4, seq=len(flooded) + 1,
                                         proposer_id='flood', stamp_ns=probe.now_ns()),
                                epoch=flood_epoch)
        pub.publish(encode_proposal(p))
        flooded.append(p.proposal_id)
        probe.executor.spin_once(timeout_sec=0.001)
    stream.pause()
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)

    def flood_decided():
        return {d.proposal_id for d in decisions if d.proposal_id.startswith('flood/')}
    probe.spin_until(lambda: len(flood_decided()) == len(flooded), 30.0)
    ids = [d.proposal_id for d in decisions if d.subject == GateDecision.SUBJECT_PROPOSAL]
    assert len(ids) == len(set(ids)), 'a proposal was decided twice'
    assert flood_decided() == set(flooded), \
        f'{len(flooded) - len(flood_decided())} of {len(flooded)} flood proposals got no decision'


def output_process(gate_pid: int) -> int:
    """The PID of the Gate's output process (its child)."""
    for entry in os.scandir('/proc'):
        if entry.name.isdigit():
            try:
                stat = open(f'/proc/{entry.name}/stat').read()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == gate_pid:
                return int(entry.name)
    raise AssertionError(f'the gate (pid {gate_pid}) has no output process')


def gone(pid: int) -> bool:
    try:
        state = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return True
    return state == 'Z'


def first_stop_after(commands, t_ns: int):
    return min((sent for _, sent, v in commands if v == 0.0 and sent > t_ns), default=None)


def test_the_output_process_publishes_at_real_time_priority(probe, loop):
    graph, *_ = loop
    output = output_process(graph.processes['gate'].pid)
    assert os.sched_getscheduler(output) == os.SCHED_FIFO
    assert os.sched_getparam(output).sched_priority == 10


def test_the_output_process_is_real_time_from_its_start(tmp_path):
    """The Gate raises its output process's priority when it starts it, not once its imports
    are done: on a busy host those alone took longer than the Gate waits for its first publish."""
    from flywheel.ros.command_output import CommandOutput
    output = CommandOutput(['--topic', '/deadline_start/cmd_vel', '--tick', '0.02'],
                           lambda: None, 1.0, lambda _: None, priority=10).start()
    try:
        # the child has only just been started: whatever its own code will do, it has not yet
        assert os.sched_getscheduler(output.pid) == os.SCHED_FIFO
        assert os.sched_getparam(output.pid).sched_priority == 10
    finally:
        output.stop(final_stops=0)


def test_a_killed_gate_leaves_the_robot_stopped(probe, loop):
    """kill -9 of the Gate: its output process sees the pipe close, publishes stop and exits."""
    graph, _, commands, decisions, _ = loop
    gate = graph.processes['gate']
    output = output_process(gate.pid)
    killed_ns = probe.now_ns()
    os.kill(gate.pid, signal.SIGKILL)
    gate.wait(timeout=5)
    dead_ns = probe.now_ns()        # reaped: the kernel has closed its end of the pipe
    assert probe.spin_until(lambda: first_stop_after(commands, killed_ns) is not None, 5.0)
    assert first_stop_after(commands, killed_ns) - killed_ns <= TICK * 1e9 * 2
    assert probe.spin_until(lambda: gone(output), 5.0), 'the output process outlived the gate'
    # (decisions the Gate published just before it died may be lost with it.) The promise: nothing
    # moves once its death can be seen. Between the kill and the pipe's close, during the
    # kernel's exit of the Gate, the output process may still send the approval it holds (under
    # `make stress` one did, stamped after killed_ns): it cannot know yet.
    moved = [(sent - dead_ns, v) for _, sent, v in commands if sent > dead_ns and v != 0.0]
    assert not moved, f'moving commands after the Gate was reaped (ns after, v): {moved}'


def test_an_approval_handed_over_as_the_gate_dies_is_never_published(probe):
    """The Gate hands its output process a moving approval and is killed at once: the record and
    the end of the pipe reach the output process together (frozen meanwhile, so it reads them as
    one). It publishes stop, never the approval of a Gate it can see is gone."""
    from flywheel.enforcement.handoff import record
    topic = '/handoff_death/cmd_vel'
    commands: list = []       # (send stamp ns, v)
    probe.node.create_subscription(
        TwistStamped, topic,
        lambda m: commands.append((from_time(m.header.stamp), m.twist.linear.x)), EVERY_COMMAND)
    beats, beat_w = os.pipe()
    output = subprocess.Popen([sys.executable, '-m', 'flywheel.ros.output_process',
                               '--heartbeat-fd', str(beat_w), '--topic', topic, '--tick', '0.02',
                               '--stamped'], stdin=subprocess.PIPE, pass_fds=(beat_w,))
    os.close(beat_w)
    try:
        assert probe.spin_until(lambda: commands, 30.0)        # publishing stop, matched
        os.kill(output.pid, signal.SIGSTOP)
        output.stdin.write(record((0.5, 0.0), time.monotonic_ns() + 10_000_000_000))
        output.stdin.close()                                   # the Gate is gone
        resumed_ns = probe.now_ns()
        os.kill(output.pid, signal.SIGCONT)
        assert output.wait(timeout=10) == 0
        # its last stops are acknowledged before it exits, and come after anything it sent first
        assert probe.spin_until(lambda: any(sent > resumed_ns for sent, _ in commands), 5.0)
        assert not [v for _, v in commands if v != 0.0], commands
    finally:
        if output.poll() is None:
            output.kill()
            output.wait()
        os.close(beats)


@pytest.mark.parametrize('how', [signal.SIGKILL, signal.SIGSTOP])
def test_a_dead_or_frozen_output_process_is_replaced_and_the_robot_stops(probe, loop, how):
    """The Gate publishes stop itself within its watchdog, withdraws the approval, replaces the
    output process (killing a frozen one) and the loop resumes under a new approval."""
    graph, stream, commands, decisions, _ = loop
    output = output_process(graph.processes['gate'].pid)
    hit_ns = probe.now_ns()
    os.kill(output, how)
    try:
        assert probe.spin_until(lambda: first_stop_after(commands, hit_ns) is not None, 5.0)
        assert first_stop_after(commands, hit_ns) - hit_ns <= BUDGET_NS
        assert probe.spin_until(lambda: gone(output), 5.0), 'the old output process lives on'
        assert probe.spin_until(lambda: any(v != 0.0 and sent > hit_ns + BUDGET_NS
                                            for _, sent, v in commands), 30.0), \
            'the loop never resumed under a new output process'
    finally:
        if how == signal.SIGSTOP and not gone(output):
            os.kill(output, signal.SIGCONT)
    assert output_process(graph.processes['gate'].pid) != output
    stream.pause()
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)


def test_a_frozen_gate_cannot_keep_a_command_in_force(probe, loop):
    """SIGSTOP of the Gate itself: its output process stops the robot at the deadline and keeps
    publishing stop every tick."""
    graph, stream, commands, decisions, _ = loop
    gate = graph.processes['gate']
    frozen_ns = probe.now_ns()
    os.kill(gate.pid, signal.SIGSTOP)
    try:
        probe.spin_for(1.0)
    finally:
        os.kill(gate.pid, signal.SIGCONT)
    during = sorted(s for _, s, _ in commands if frozen_ns < s < frozen_ns + 0.9e9)
    assert during and during[0] - frozen_ns <= 4 * TICK * 1e9
    assert max(b - a for a, b in zip(during, during[1:])) <= 4 * TICK * 1e9
    moving = [s for _, s, v in commands if v != 0.0 and frozen_ns < s < frozen_ns + 0.9e9]
    assert not moving or max(moving) - frozen_ns <= BUDGET_NS
    stream.pause()
    assert stop_after_last_approval(probe, commands, decisions) <= BUDGET_NS
    assert_no_command_outlives_its_approval(probe, commands, decisions)
