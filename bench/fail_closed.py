"""Fail-closed deadline, measured at the Gate and at a receiver: no approval is honoured longer than
command_timeout, and when approvals stop the Gate says stop within command_timeout + one tick
(320 ms with config/flywheel.yaml), whatever else is going on.

Scenarios (Oracle and Gate as separate processes; one graph per scenario, reused across its trials):
  oracle_kill  the Oracle is SIGKILLed while proposals stream at 50 Hz (restarted between trials)
  subscriber   cmd_vel subscriber processes (Fast DDS default transports, also reading
               gate_decisions) are SIGKILLed and restarted while approvals flow; 0-0.6 s later the
               approvals stop (the stream pauses)
  oversize     a 10^5-point proposal (11 MB) right after an approval, then nothing
  flood        ~1 kHz of proposals on top of the stream for --flood-seconds, then both stop. The
               flood comes from a second *allowed* proposer (on Oracle and Gate; the trust root
               names no key for it, so it needs no signature): every flood proposal is real work
               for both (scored or shed, and decided). An unknown proposer's flood would only be
               refused on arrival, which is cheaper, and would withdraw the approval in force.
               It is published by a process of its own, so the 1 kHz loop does not compete with
               this process's reception for its interpreter.

Per trial: the time from the last approving decision (its header.stamp: when the Gate decided) to
the first stop after it, as sent by the Gate (TwistStamped header.stamp: when that message was
sent) and as received by a receiver process (DDS reception time, rclpy's MessageInfo
'received_timestamp'); and
whether any moving command was sent or received more than the budget after the approval it belongs
to (the latest approving decision for the same command before it was sent). A trial is over budget
at the Gate (or the receiver) if its stop or any of its moving commands is late there. Per scenario
also the Gate's longest silence (largest gap between the send stamps of two cmd_vel messages it
published one after the other, by the DDS writer's sequence numbers; messages lost on the way are
counted apart), the longest delay from the Gate's stamp to the DDS write of the same message (the
DDS source timestamp: how long publish() itself took to hand it over), and the longest hold
(approval -> moving command).

This process never delays what it measures: proposals (raw CDR bytes, flywheel.wire; signed with the
proposer key of this run's own trust root, made in a scratch ROS_HOME) and odometry (50 Hz, frame
map, at the trajectories' start: the Gate refuses proposals without fresh odometry) are each
published from a thread of their own; gate_decisions are taken by an executor on a third thread.
cmd_vel (TwistStamped, deep reader history) is received by a child process that subscribes to
nothing else, as a base driver would, and pipes each message's figures here; its figure is DDS's
reception time, not when Python got to the message. It uses the nodes' UDP-only transport
(configure_transport). With --transport shm the node processes instead get an empty Fast DDS profile
file, so rmw_fastrtps builds its LOCALHOST transports (shared memory + UDP): the baseline in which
publish() stalls behind dead subscribers' shared-memory ports (Fast DDS's port health check: steps
of ~1/3 s, 1 s per port). The killed subscribers use the default transports in both modes (they
stand for someone else's process on the robot).

    scripts/run.sh python bench/fail_closed.py [--trials 200] [--hog] [--transport udp|shm]
        [--scenarios oracle_kill,subscriber,oversize,flood] [--listeners 2]
        [--receiver-priority P]

Default: 200 trials x 4 scenarios, about 35-45 min on 2 cores (oracle_kill is the slowest: the
Oracle restarts after every trial). Progress goes to stderr; tables to stdout.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import dataclasses
import json
import math
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Children, CpuHog, StandingOdometry, command_line, isolate_ros,  # noqa: E402
                    load, machine, node_env, provision_keys)

TRANSPORT = isolate_ros()

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import yaml  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402

from alignment_flywheel.msg import GateDecision, Proposal as ProposalMsg  # noqa: E402
from flywheel.auth import load_message_key  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import from_time  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402
from flywheel.wire import WireError, decode_proposal, encode_proposal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

SCENARIOS = ('oracle_kill', 'subscriber', 'oversize', 'flood')
SECONDS = {'oracle_kill': 3.5, 'subscriber': 2.5, 'oversize': 2.0, 'flood': 2.5}  # per trial
START = (1.5, 1.0, 0.0)          # where every trajectory starts and the odometry puts the robot
STREAM_V, FLOOD_V = 0.5, 0.4     # each proposer's command (approvals are matched by command)
RATE, FLOOD_RATE = 50.0, 1000.0
HUGE_POINTS = 100_000
# Keep every message even if this process's executor falls behind for a while.
EVERY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100_000,
                   reliability=ReliabilityPolicy.RELIABLE)
APPROVING = (GateDecision.ACTION_ALLOW, GateDecision.ACTION_DEGRADE)

LISTENER = '''
import rclpy
from geometry_msgs.msg import TwistStamped
from alignment_flywheel.msg import GateDecision
from rclpy.qos import QoSProfile, ReliabilityPolicy
rclpy.init()
node = rclpy.create_node('cmd_vel_listener')
seen = []
def on_command(msg):
    if not seen:
        seen.append(1)
        print('rx', flush=True)
node.create_subscription(TwistStamped, 'cmd_vel', on_command,
                         QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
node.create_subscription(GateDecision, "gate_decisions", lambda raw: None,
                         QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE), raw=True)
print('up', flush=True)
rclpy.spin(node)
'''


def shared_memory_segments(pid: int) -> int:
    """How many Fast DDS shared-memory segments a process and its children (the Gate's output
    process, which publishes cmd_vel) map (0: they do not use SHM)."""
    segments = set()
    try:
        pids = [pid] + [int(c) for task in Path(f'/proc/{pid}/task').iterdir()
                        for c in (task / 'children').read_text().split()]
        maps_of = [Path(f'/proc/{p}/maps').read_text() for p in pids]
    except OSError:
        return -1
    for maps in maps_of:
        segments |= {line.split()[-1] for line in maps.splitlines() if '/dev/shm/fastdds' in line}
    return len(segments)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Encoder:
    """Proposals as CDR bytes, fast: one template encoded once, then the stamp, id and seq patched
    in place (ids are fixed-width, so nothing moves). Checked against flywheel.wire at start."""

    SENTINEL = 0x0123456789ABCDEF >> 2

    def __init__(self, prefix: str, proposer: str, v: float, epoch: int, points: int = 20):
        self.prefix = prefix
        p = straight(*START, v, points=points, seq=self.SENTINEL, proposer_id=proposer)
        p = dataclasses.replace(p, proposal_id=f'{prefix}{0:010d}', epoch=epoch)
        self.template = encode_proposal(p)
        self.id_at = self.template.index(f'{prefix}{0:010d}\0'.encode()) + len(prefix)
        self.seq_at = self.template.index(struct.pack('<QQ', epoch, self.SENTINEL)) + 8
        try:
            check = decode_proposal(self.encode(7, 1_234_567_890_123), points)
            check = getattr(check, 'proposal', check)      # WireProposal or Proposal
            got = (check.seq, check.stamp_ns, check.proposal_id, check.epoch)
            want = (7, 1_234_567_890_123, f'{prefix}{7:010d}', epoch)
        except WireError as exc:       # over the message bound: only the id can be read
            got, want = (exc.oversize, exc.proposal_id), (True, f'{prefix}{7:010d}')
        assert got == want, (got, want)

    def encode(self, seq: int, stamp_ns: int) -> bytes:
        out = bytearray(self.template)
        struct.pack_into('<iI', out, 4, *divmod(stamp_ns, 1_000_000_000))
        out[self.id_at:self.id_at + 10] = b'%010d' % seq
        struct.pack_into('<Q', out, self.seq_at, seq)
        return bytes(out)


class Signed:
    """Signed proposals from the proposer the trust root names (encoded and signed each time)."""

    prefix = 'proposer/'

    def __init__(self, key, epoch: int):
        self.key, self.epoch = key, epoch

    def encode(self, seq: int, stamp_ns: int) -> bytes:
        p = straight(*START, STREAM_V, seq=seq, stamp_ns=stamp_ns)
        return encode_proposal(dataclasses.replace(p, epoch=self.epoch), self.key)


class Stream:
    """Proposals at ``rate`` from a thread of their own while resumed."""

    def __init__(self, pub, clock, encoder, rate: float):
        self.pub, self.clock, self.encoder, self.period = pub, clock, encoder, 1.0 / rate
        self.seq = 0
        self.lock = threading.Lock()
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f'{encoder.prefix}')
        self._thread.start()

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.05):
                continue
            next_at = time.monotonic()
            while self._running.is_set() and not self._stop.is_set():
                with self.lock:     # pause() returns only once no publish is under way
                    if not self._running.is_set():
                        break
                    self.seq += 1
                    try:
                        self.pub.publish(self.encoder.encode(self.seq, self.clock()))
                    except Exception:  # noqa: BLE001 - torn down
                        return
                next_at += self.period
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.1:
                    next_at = time.monotonic()      # far behind: do not burst to catch up

    def resume(self) -> None:
        self._running.set()

    def pause(self) -> None:
        with self.lock:
            self._running.clear()

    def close(self) -> None:
        self._running.clear()
        self._stop.set()
        self._thread.join(timeout=2.0)


class FloodProcess:
    """The flood's publisher, in a child process (this file with --flood-child): resumed and
    paused by a line on its stdin, each answered once done, with the flood's count so far."""

    def __init__(self, children: Children, epoch: int):
        self.children = children
        self.p = children.spawn([sys.executable, __file__, '--flood-child', str(epoch)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.seq = 0
        self._expect('ready', 60.0)

    def _expect(self, word: str, timeout: float = 10.0) -> None:
        readable, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline().split() if readable else []
        if not line or line[0] != word:
            raise RuntimeError(f'the flood process did not answer {word!r} within {timeout:.0f} s'
                               f' (exit code {self.p.poll()})')
        self.seq = int(line[1]) if len(line) > 1 else self.seq

    def _say(self, word: str) -> None:
        self.p.stdin.write(word + '\n')
        self.p.stdin.flush()
        self._expect(word)

    def resume(self) -> None:
        self._say('resume')

    def pause(self) -> None:
        """Returns once no flood publish is under way."""
        self._say('pause')

    def close(self) -> None:
        self.children.kill(self.p)


def flood_child(epoch: int) -> int:
    """The flood process: an allowed, unsigned proposer at FLOOD_RATE while resumed. It says
    'ready' once the Oracle and the Gate both subscribe to it."""
    rclpy.init()
    node = rclpy.create_node('bench_flood')
    pub = node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    flood = Stream(pub, lambda: node.get_clock().now().nanoseconds,
                   Encoder('flood/', 'flood', FLOOD_V, epoch), FLOOD_RATE)
    try:
        deadline = time.monotonic() + 60.0
        while pub.get_subscription_count() < 2:
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.01)
        print('ready', flush=True)
        for line in sys.stdin:          # ends when the benchmark closes the pipe
            word = line.strip()
            if word == 'resume':
                flood.resume()
            elif word == 'pause':
                flood.pause()
            print(f'{word} {flood.seq}', flush=True)
    finally:
        flood.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


@dataclasses.dataclass(frozen=True)
class Decision:
    stamp_ns: int
    approving: bool
    command: tuple[float, float]
    proposal_id: str
    reasons: tuple[int, ...]
    number: tuple[int, int]     # (epoch, seq): the Gate numbers its decisions without gaps


def receiver_child(priority: int) -> int:
    """The receiver process (--receiver-child): cmd_vel only, as a base driver would subscribe,
    each message written to stdout as 'received sent v w written number' (see Driver.commands).
    With a priority it asks for SCHED_FIFO first, so DDS's threads inherit it."""
    if priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except PermissionError:
            print(f'--receiver-priority {priority}: SCHED_FIFO refused (no rtprio limit or '
                  'CAP_SYS_NICE)', file=sys.stderr)
            return 2
    rclpy.init()
    node = rclpy.create_node('bench_cmd_vel_receiver')

    def on_command(msg: TwistStamped, info) -> None:
        print(info['received_timestamp'], from_time(msg.header.stamp), repr(msg.twist.linear.x),
              repr(msg.twist.angular.z), info['source_timestamp'],
              info['publication_sequence_number'], flush=True)

    node.create_subscription(TwistStamped, topics.CMD_VEL, on_command, EVERY)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


class Driver:
    """This process's node: publishers fed by their own threads, gate_decisions taken by an
    executor on another; cmd_vel is received by a process of its own, which does nothing else
    (this process decodes every decision, a thousand a second in a flood, and publishes)."""

    def __init__(self, children: Children, receiver_priority: int):
        rclpy.init()
        self.node = rclpy.create_node('bench_fail_closed')
        # (received, sent, v, w, written, number): DDS reception in the receiver process, the
        # Gate's stamp, the command, the DDS source timestamp (when the Gate's publish() handed
        # it to DDS), the writer's sequence number (a gap: a message lost on the way); in ns
        self.commands: list[tuple[int, int, float, float, int, int]] = []
        self.receiver = children.spawn([sys.executable, __file__, '--receiver-child',
                                        str(receiver_priority)],
                                       stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_commands, daemon=True, name='commands').start()
        self._raw = collections.deque()
        self.decisions: list[Decision] = []
        self.node.create_subscription(GateDecision, topics.GATE_DECISIONS,
                                      lambda raw: self._raw.append(raw), EVERY, raw=True)
        self.proposals = self.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
        self.odometry = StandingOdometry(
            [self.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)], self.now_ns, START)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spinning = True
        self._spinner = threading.Thread(target=self._spin, daemon=True, name='executor')
        self._spinner.start()

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _spin(self) -> None:
        while self._spinning:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def _read_commands(self) -> None:
        try:
            for line in self.receiver.stdout:
                received, sent, v, w, written, number = line.split()
                self.commands.append((int(received), int(sent), float(v), float(w), int(written),
                                      int(number)))
        except (ValueError, OSError):
            pass        # closed at the end

    def take_decisions(self) -> list[Decision]:
        """Decode what arrived since the last call (on this thread, not the executor's)."""
        while self._raw:
            d = deserialize_message(self._raw.popleft(), GateDecision)
            self.decisions.append(Decision(
                from_time(d.header.stamp),
                d.subject == GateDecision.SUBJECT_PROPOSAL and d.command_published
                and d.action in APPROVING,
                (d.command.linear.x, d.command.angular.z), d.proposal_id, tuple(d.reasons),
                (d.epoch, d.seq)))
        return self.decisions

    def reset(self) -> None:
        self.take_decisions()
        self.commands.clear()
        self.decisions.clear()

    def close(self) -> None:
        self.odometry.close()
        self._spinning = False
        self._spinner.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


class Listeners:
    """cmd_vel (and gate_decisions) subscriber processes with Fast DDS's default transports."""

    def __init__(self, children: Children, n: int):
        self.children, self.n = children, n
        self.env = node_env(shared_memory=False)      # no profile: rmw's own (SHM + UDP)
        self.procs: list[tuple[subprocess.Popen, threading.Event]] = []
        self.kills = self.deaf = 0

    def fill(self) -> None:
        while len(self.procs) < self.n:
            p = self.children.spawn([sys.executable, '-c', LISTENER], env=self.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            receiving = threading.Event()
            threading.Thread(target=self._watch, args=(p, receiving), daemon=True).start()
            self.procs.append((p, receiving))

    @staticmethod
    def _watch(p: subprocess.Popen, receiving: threading.Event) -> None:
        try:
            for line in p.stdout:
                if line.strip() == b'rx':
                    receiving.set()
        except (ValueError, OSError):
            pass

    def receiving(self) -> bool:
        return all(r.is_set() for _, r in self.procs)

    def drop_deaf(self) -> int:
        """Kill the listeners that never received anything (seen with shared memory: a
        restarted subscriber the Gate's publisher never reaches); how many."""
        deaf = [(p, r) for p, r in self.procs if not r.is_set()]
        for entry in deaf:
            self.children.kill(entry[0])
            self.procs.remove(entry)
        self.deaf += len(deaf)
        return len(deaf)

    def kill_all(self) -> None:
        for p, _ in self.procs:
            self.children.kill(p)
            self.kills += 1
        self.procs.clear()

    def close(self) -> None:
        self.kill_all()


@dataclasses.dataclass
class Trial:
    gate_ms: float          # last approval -> first stop sent (inf: none within the wait)
    receiver_ms: float      # last approval -> first stop received
    late_sent: int          # moving commands sent more than the budget after their approval
    late_received: int
    unapproved: int         # moving commands with no approval before them (must be 0)
    hold_sent_ms: float     # longest approval -> moving command sent
    hold_received_ms: float
    silence_ms: float       # longest gap between consecutive send stamps in the trial
    written_ms: float       # longest Gate stamp -> DDS write (publish() under way in the Gate)
    lost: int               # cmd_vel messages that never arrived here (writer sequence gaps)
    decisions_lost: int     # the Gate's decisions in the trial that never arrived here
    note: str = ''

    @property
    def judged(self) -> bool:
        """A moving command is late only against the approval it belongs to: with decisions
        lost on the way, a command's approval may be one this process never saw."""
        return self.decisions_lost == 0


class Bench:
    def __init__(self, args, driver: Driver, children: Children, logs: Path, keys: Path):
        self.args, self.driver, self.children, self.logs = args, driver, children, logs
        gate = yaml.safe_load(args.params.read_text())['/**/gate']['ros__parameters']
        self.budget_ns = int(round((gate['command_timeout'] + gate['tick_period']) * 1e9))
        self.rng = random.Random(args.seed)
        self.results: dict[str, list[Trial]] = {}
        self.extra: dict[str, str] = {}
        self.epoch = epoch = time.time_ns()
        self.stream = Stream(driver.proposals, driver.now_ns,
                             Signed(load_message_key(keys / 'proposer.pem'), epoch), RATE)
        self.flood: FloodProcess | None = None     # started with the flood scenario's graph
        self.huge = Encoder('proposer/huge-', 'proposer', STREAM_V, epoch, HUGE_POINTS)

    # -- graph ----------------------------------------------------------------------------------

    def graph(self, scenario: str) -> Graph:
        overrides = {'gate': {'stamped': True}, 'oracle': {}}
        if scenario == 'flood':
            for node in ('gate', 'oracle'):
                overrides[node]['allowed_proposers'] = ['proposer', 'flood']
        env = node_env(self.args.transport == 'shm', self.logs)
        return Graph(('oracle', 'gate'), self.args.params, overrides, env,
                     self.logs / scenario)

    def wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f'timed out after {timeout:.0f} s waiting for {what}')
            time.sleep(0.01)

    def approvals(self) -> list[Decision]:
        return [d for d in self.driver.take_decisions() if d.approving]

    def flowing(self, since_ns: int, count: int = 5) -> bool:
        """``count`` approvals decided after since_ns, and a moving command received after them."""
        approved = [d.stamp_ns for d in self.approvals() if d.stamp_ns > since_ns]
        return (len(approved) >= count
                and any(v != 0.0 and sent > approved[count - 1]
                        for _, sent, v, _, _, _ in self.driver.commands[-20:]))

    def get_going(self, timeout: float = 60.0) -> None:
        t0 = self.driver.now_ns()
        self.stream.resume()
        try:
            self.wait(lambda: self.flowing(t0), timeout, 'approvals to flow')
        except RuntimeError as exc:
            recent = collections.Counter(r for d in self.driver.take_decisions()[-200:]
                                         for r in d.reasons)
            raise RuntimeError(f'{exc}; reasons of the last decisions: {dict(recent)} (logs in '
                               f'{self.logs})') from None

    # -- one trial ------------------------------------------------------------------------------

    def settle(self, timeout: float = 15.0) -> int | None:
        """Wait until a stop sent a whole budget after the last approval has arrived (nothing of
        that approval can still be in flight) and the last approval stays the last; return its
        stamp (None: no stop came)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            approved = self.approvals()
            if approved:
                a = max(d.stamp_ns for d in approved[-200:])
                if any(v == 0.0 and w == 0.0 and sent > a + self.budget_ns
                       for _, sent, v, w, _, _ in self.driver.commands[-40:]):
                    if a == last:
                        return a
                    last = a
                    time.sleep(0.2)     # decisions and commands are separate streams
                    continue
            time.sleep(0.01)
        return None

    def measure(self, window: tuple[int, int], last: int | None, note: str = '') -> Trial:
        commands = [c for c in self.driver.commands if window[0] < c[1] <= window[1]]
        by_command: dict[tuple, list[int]] = collections.defaultdict(list)
        for d in self.approvals():
            by_command[d.command].append(d.stamp_ns)
        for stamps in by_command.values():
            stamps.sort()
        late_sent = late_received = unapproved = 0
        hold_sent = hold_received = 0
        for received, sent, v, w, _, _ in commands:
            if v == 0.0 and w == 0.0:
                continue
            stamps = by_command.get((v, w), [])
            k = bisect.bisect_right(stamps, sent)
            if k == 0:
                unapproved += 1
                continue
            a = stamps[k - 1]
            hold_sent, hold_received = max(hold_sent, sent - a), max(hold_received, received - a)
            late_sent += sent - a > self.budget_ns
            late_received += received - a > self.budget_ns
        # The Gate's silence: between two messages it published one after the other (by the
        # writer's sequence numbers, so a message lost on the way is not taken for silence).
        by_number = sorted((c[5], c[1]) for c in commands)
        silence = max((b[1] - a[1] for a, b in zip(by_number, by_number[1:])
                       if b[0] == a[0] + 1), default=0)
        lost = sum(b[0] - a[0] - 1 for a, b in zip(by_number, by_number[1:]))
        written = max((c[4] - c[1] for c in commands), default=0)
        # decisions the Gate made in the window (and a budget before it) that never arrived here
        numbers = sorted(d.number for d in self.driver.decisions
                         if window[0] - self.budget_ns < d.stamp_ns <= window[1])
        decisions_lost = sum(b[1] - a[1] - 1 for a, b in zip(numbers, numbers[1:])
                             if a[0] == b[0])
        gate = receiver = math.inf
        if last is not None:
            stops = [(sent, received) for received, sent, v, w, _, _ in commands
                     if v == 0.0 and w == 0.0 and sent > last]
            if stops:
                gate = (min(s for s, _ in stops) - last) / 1e6
                receiver = (min(r for _, r in stops) - last) / 1e6
        return Trial(gate, receiver, late_sent, late_received, unapproved, hold_sent / 1e6,
                     hold_received / 1e6, silence / 1e6, written / 1e6, lost, decisions_lost, note)

    def run_scenario(self, scenario: str) -> None:
        trials: list[Trial] = []
        self.results[scenario] = trials
        listeners = Listeners(self.children, self.args.listeners)
        graph = self.graph(scenario).start()
        self.driver.reset()
        oversize_refused, segments = 0, -1
        try:
            self.wait(lambda: self.driver.proposals.get_subscription_count() >= 2
                      and self.driver.commands, 60.0, 'the Oracle and the Gate to come up')
            if scenario == 'flood':
                self.flood = FloodProcess(self.children, self.epoch)
            self.get_going()
            segments = shared_memory_segments(graph.processes['gate'].pid)
            window_start = self.driver.now_ns()
            started = time.monotonic()
            for k in range(self.args.trials):
                note = ''
                if scenario == 'subscriber':
                    listeners.fill()
                    try:
                        self.wait(listeners.receiving, 30.0, 'the cmd_vel listeners to receive')
                    except RuntimeError:
                        note = f'{listeners.drop_deaf()} listener(s) got nothing in 30 s'
                self.get_going()
                time.sleep(self.rng.uniform(0.1, 0.3))      # approvals flowing for a while
                if scenario == 'oracle_kill':
                    graph.processes['oracle'].kill()
                elif scenario == 'subscriber':
                    listeners.kill_all()
                    listeners.fill()                         # restarted at once
                    time.sleep(self.rng.uniform(0.0, 0.6))  # approvals still flowing
                    self.stream.pause()
                elif scenario == 'oversize':
                    seen = len(self.approvals())
                    self.wait(lambda: len(self.approvals()) > seen, 5.0, 'an approval')
                    self.stream.pause()
                    huge = self.huge.encode(self.stream.next_seq(), self.driver.now_ns())
                    self.driver.proposals.publish(huge)
                elif scenario == 'flood':
                    self.flood.resume()
                    time.sleep(self.args.flood_seconds)
                    self.flood.pause()
                    self.stream.pause()
                last = self.settle()
                if scenario == 'oversize':
                    refused = sum(GateDecision.REASON_OVERSIZE in d.reasons
                                  for d in self.driver.take_decisions())
                    if refused <= oversize_refused:
                        note = 'oversize proposal not (yet) refused'
                    oversize_refused = refused
                window_end = self.driver.now_ns()
                trial = self.measure((window_start, window_end), last, note)
                window_start = window_end
                trials.append(trial)
                elapsed = time.monotonic() - started
                log(f'[{scenario} {k + 1}/{self.args.trials}] Gate {trial.gate_ms:.1f} ms, '
                    f'receiver {trial.receiver_ms:.1f} ms, late {trial.late_sent}/'
                    f'{trial.late_received}, silence {trial.silence_ms:.0f} ms {note}'
                    f'  (~{elapsed / (k + 1) * (self.args.trials - k - 1) / 60:.1f} min left)')
                if scenario == 'oracle_kill':
                    graph.processes['oracle'].wait(timeout=10)
                    del graph.processes['oracle']
                    graph.start(('oracle',))
                self.driver.take_decisions()
                self._trim()
        finally:
            notes = [f'Gate and its output process map {segments} Fast DDS shared-memory segments']
            if scenario == 'oversize':
                notes.append(f'{oversize_refused} of {len(trials)} refused OVERSIZE')
            elif scenario == 'subscriber':
                notes.append(f'{listeners.kills} subscriber processes SIGKILLed'
                             + (f', {listeners.deaf} restarted ones never received cmd_vel '
                                'within 30 s' if listeners.deaf else ''))
            elif scenario == 'flood' and self.flood is not None:
                notes.append(f'{self.flood.seq} flood proposals in all from their own process, '
                             f'{self.args.flood_seconds} s per trial')
            elif scenario == 'oracle_kill':
                notes.append(f'{len(trials)} Oracle processes SIGKILLed')
            self.extra[scenario] = '; '.join(notes)
            self.stream.pause()
            if self.flood is not None:
                self.flood.close()
            listeners.close()
            graph.stop()
            exited = graph.exited()
            bad = {n: c for n, c in exited.items() if n == 'gate' and c not in (0, None)}
            if bad:
                log(f'{scenario}: the Gate exited with {bad} (logs in {self.logs / scenario})')

    def _trim(self) -> None:
        """Keep memory flat over long runs: only the recent past is needed for the next trial."""
        horizon = self.driver.now_ns() - 5_000_000_000
        cmds = self.driver.commands
        if len(cmds) > 20_000:
            k = bisect.bisect_left([c[1] for c in cmds], horizon)
            del cmds[:k]
        decs = self.driver.decisions
        if len(decs) > 20_000:
            self.driver.decisions[:] = [d for d in decs if d.stamp_ns > horizon or d.approving]

    # -- report ---------------------------------------------------------------------------------

    def report(self, wall_s: float) -> None:
        budget = self.budget_ns / 1e6
        print(f'machine: {machine()}')
        print(f'command: {command_line()}')
        print(f'transport: nodes {"Fast DDS default LOCALHOST transports (shared memory + UDP)" if self.args.transport == "shm" else "UDP only (config/dds/localhost_udp.xml)"}; '
              f'this driver {TRANSPORT}')
        print('receiver: cmd_vel only, at '
              + (f'SCHED_FIFO priority {self.args.receiver_priority}'
                 if self.args.receiver_priority else 'normal priority'))
        print(f'load: {"2 busy-looping processes (--hog)" if self.args.hog else "no hog"}; '
              f'load average at start {self.load_start}, at end {load()}; wall time '
              f'{wall_s / 60:.1f} min')
        print(f'budget: command_timeout + tick = {budget:.0f} ms; figures: last approving '
              'decision -> first stop, sent (Gate stamp) and received (DDS reception)\n')
        print('| scenario | trials | Gate p50 (ms) | Gate p99 | Gate max | Gate over budget | '
              'receiver p50 (ms) | receiver p99 | receiver max | receiver over budget |')
        print('|---|---|---|---|---|---|---|---|---|---|')
        for scenario, trials in self.results.items():
            if not trials:
                continue
            g = np.array([t.gate_ms for t in trials])
            r = np.array([t.receiver_ms for t in trials])
            late_g = [t.gate_ms > budget or t.late_sent > 0 or t.unapproved > 0 for t in trials]
            late_r = [t.receiver_ms > budget or t.late_received > 0 or t.unapproved > 0
                      for t in trials]
            print(f'| {scenario} | {len(trials)} | {_p(g, 50)} | {_p(g, 99)} | {_p(g, 100)} | '
                  f'{_over(trials, late_g)} | {_p(r, 50)} | {_p(r, 99)} | {_p(r, 100)} | '
                  f'{_over(trials, late_r)} |')
        print('\n| scenario | longest hold, sent (ms) | longest hold, received (ms) | '
              'longest Gate silence (ms) | longest stamp -> DDS write in the Gate (ms) | '
              'cmd_vel lost on the way | decisions lost on the way | moving commands late (sent / '
              'received) | unapproved | notes |')
        print('|---|---|---|---|---|---|---|---|---|---|')
        for scenario, trials in self.results.items():
            if not trials:
                print(f'| {scenario} | | | | | | | | | {self.extra.get(scenario, "")} |')
                continue
            print(f'| {scenario} | {max(t.hold_sent_ms for t in trials):.1f} | '
                  f'{max(t.hold_received_ms for t in trials):.1f} | '
                  f'{max(t.silence_ms for t in trials):.1f} | '
                  f'{max(t.written_ms for t in trials):.1f} | {sum(t.lost for t in trials)} | '
                  f'{sum(t.decisions_lost for t in trials)} | '
                  f'{sum(t.late_sent for t in trials)} / {sum(t.late_received for t in trials)} '
                  f'| {sum(t.unapproved for t in trials)} | {self.extra.get(scenario, "")} |')
        path = self.logs / 'trials.json'
        path.write_text(json.dumps({s: [dataclasses.asdict(t) for t in ts]
                                    for s, ts in self.results.items()}, default=str))
        print(f'\nper-trial figures: {path}')


def _over(trials: list[Trial], late: list[bool]) -> str:
    """Trials over budget; those that only look so because decisions were lost on the way to
    this process (a command matched to an older approval than its own) are counted apart."""
    over = sum(t.judged and x for t, x in zip(trials, late))
    unjudged = sum(not t.judged and x for t, x in zip(trials, late))
    return f'{over}' + (f' (+{unjudged} not judged: decisions lost on the way)' if unjudged else '')


def _p(a: np.ndarray, q: float) -> str:
    """A percentile taken from the samples themselves (a trial with no stop counts as infinite)."""
    if q == 100 and not np.isfinite(a).all():
        return f'no stop ({int((~np.isfinite(a)).sum())})'
    return f'{np.percentile(a, q, method="higher"):.1f}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, default=200, help='per scenario (default 200)')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS),
                        help=f'comma-separated subset of {",".join(SCENARIOS)}')
    parser.add_argument('--hog', action='store_true',
                        help='load every core with a busy-looping process for the whole run')
    parser.add_argument('--transport', choices=('udp', 'shm'), default='udp',
                        help='udp: the nodes choose their UDP-only profile (the default); shm: '
                             'they get Fast DDS default transports (shared memory + UDP)')
    parser.add_argument('--listeners', type=int, default=2,
                        help='cmd_vel subscriber processes killed per subscriber trial')
    parser.add_argument('--flood-seconds', type=float, default=0.5)
    parser.add_argument('--receiver-priority', type=int, default=0, metavar='P',
                        help='run the cmd_vel receiver at SCHED_FIFO priority P, as a base driver '
                        'given an rtprio limit would (default 0: normal priority)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--params', type=Path, default=package_config_dir() / 'flywheel.yaml')
    parser.add_argument('--flood-child', type=int, metavar='EPOCH', help=argparse.SUPPRESS)
    parser.add_argument('--receiver-child', type=int, metavar='PRIORITY', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood_child is not None:
        return flood_child(args.flood_child)
    if args.receiver_child is not None:
        return receiver_child(args.receiver_child)
    scenarios = [s for s in args.scenarios.split(',') if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f'unknown scenario(s) {sorted(unknown)}')
    logs = Path(tempfile.mkdtemp(prefix='flywheel-bench-fail-closed-'))
    children = Children()
    driver = bench = None
    started = time.monotonic()
    log(f'logs in {logs}; ROS_DOMAIN_ID {os.environ["ROS_DOMAIN_ID"]}; '
        f'about {args.trials * sum(SECONDS[s] for s in scenarios) / 60:.0f} min for '
        f'{args.trials} trials x {len(scenarios)} scenarios')
    try:
        load_start = load()
        keys = provision_keys()
        driver = Driver(children, args.receiver_priority)
        bench = Bench(args, driver, children, logs, keys)
        bench.load_start = load_start
        hog = CpuHog(children) if args.hog else None
        if hog:
            hog.__enter__()
        try:
            for scenario in scenarios:
                try:
                    bench.run_scenario(scenario)
                except RuntimeError as exc:     # reported, and the other scenarios still run
                    log(f'{scenario} aborted: {exc}')
                    bench.extra[scenario] = bench.extra.get(scenario, '') + f' ABORTED: {exc}'
        except KeyboardInterrupt:
            log('interrupted: reporting the trials done so far')
        finally:
            if hog:
                hog.__exit__()
        bench.report(time.monotonic() - started)
    finally:
        if bench is not None:
            bench.stream.close()
        if driver is not None:
            driver.close()
        children.close()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
