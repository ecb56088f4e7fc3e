"""End-to-end latency: proposal published -> gated command received, over DDS loopback at 50 Hz.

Three processes per chain: this driver, the Oracle, the Gate (the real nodes, as `flywheel up`
starts them, in namespace /flywheel). The baseline is bench/relay.py (same hops, message types,
QoS, transport and executor, doing nothing but forwarding; its docstring says why that is the
fairest floor), alive at the same time in namespace /baseline; the driver alternates blocks
between the two chains so both see the same machine noise.

The driver adds none of its own latency: proposals (20 points, signed with this run's proposer
key, as raw CDR bytes) are published from the main thread, paced at 50 Hz, each stamped with the
wall clock just before publish(); commands are taken by an executor on another thread, and the
figure is DDS's reception time of the command (rclpy MessageInfo 'received_timestamp') minus that
stamp, so when Python gets round to the message does not count. The time the driver's callback
ran is reported too. Commands are matched to proposals by a linear.x unique among the proposals
in flight. Odometry (50 Hz, from its own thread) keeps the Gate's anchor check satisfied.

Latency on a shared machine moves with its load; CPU time does much less. So each chain's
processes' CPU time (user + system, from /proc; the Gate's output process counted with the Gate)
over its own recorded blocks is reported per proposal too: the work each stage costs, at 50 Hz,
where every callback starts with cold caches. It is everything the process did in those blocks
divided by the proposals sent in them, so the Gate's share includes its odometry (50 Hz), its
ticks and its output process, which the relays do not have; /proc counts in clock ticks (10 ms),
so a short run gives only a rough figure.

    scripts/run.sh python bench/end_to_end.py [--blocks 6] [--per-block 250] [--breakdown]

--breakdown also subscribes to the real chain's safety_signals and gate_decisions (an extra
subscriber: run it apart from the headline figures) and splits each proposal's latency by the
stamps the nodes put in their messages: the Oracle's stamp (taken after scoring) and
evaluation_duration, the DDS source timestamps (when each publish() handed its message to DDS),
the decision's stamp (taken when the Gate's verdict callback starts).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (HEADER, Children, Receiver, StandingOdometry, command_line,  # noqa: E402
                    isolate_ros, load, machine, node_env, provision_keys, row, stats_ms)

TRANSPORT = isolate_ros()

import rclpy  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from alignment_flywheel.msg import GateDecision, Proposal, SafetySignals  # noqa: E402
from flywheel.auth import load_message_key  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import from_time  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402
from flywheel.wire import encode_proposal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

RATE = 50.0
START = (1.5, 1.0, 0.0)
TARGET_P50_MS, TARGET_P99_MS, TARGET_RATIO = 3.0, 8.0, 1.3
PEER = ('peer, for context (not measured here): the paper\'s reference implementation serves its '
        'gate over Flask/HTTP at about 10-12 ms p50 and 20-25 ms p99 on this machine class')
# Every command the Gate sends, even if this process's executor falls behind for a while.
EVERY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10_000,
                   reliability=ReliabilityPolicy.RELIABLE)


class Chain:
    def __init__(self, node, namespace: str):
        self.name = namespace.strip('/')
        self.pub = node.create_publisher(Proposal, f'{namespace}/{topics.PROPOSALS}', qos.STREAM)
        self.odom = node.create_publisher(Odometry, f'{namespace}/{topics.ODOM}', qos.SENSOR)
        node.create_subscription(Twist, f'{namespace}/{topics.CMD_VEL}', self.on_command, EVERY)
        self.sent: dict[float, int] = {}        # linear.x -> wall ns just before publish()
        self.received: list[float] = []         # s, DDS reception - sent
        self.handled: list[float] = []          # s, this process's callback - sent
        self.record = False
        self.breakdown: Breakdown | None = None
        self.ids: dict[str, int] = {}           # proposal id -> sent (--breakdown)
        self.pid_of: dict[float, str] = {}      # linear.x -> the proposal in flight with it
        self.pids: dict[str, int] = {}          # its processes by role, for their CPU time
        self.cpu_s: dict[str, float] = {}       # role -> CPU seconds over the recorded blocks
        self.proposals = 0                      # recorded

    def on_command(self, msg: Twist, info) -> None:
        handled = time.time_ns()
        v = round(msg.linear.x, 6)
        if self.breakdown is not None and v in self.sent:
            self.breakdown.on_command(self.pid_of[v], info)
        sent = self.sent.pop(v, None)
        if sent is not None and self.record:
            self.received.append((info['received_timestamp'] - sent) * 1e-9)
            self.handled.append((handled - sent) * 1e-9)


class Breakdown:
    """Per-proposal stamps of the real chain's intermediate messages, for --breakdown."""

    def __init__(self, node, namespace: str):
        self.signals: dict[str, tuple[int, int, int]] = {}   # id -> (stamp, evaluation, written)
        self.decisions: dict[str, int] = {}                   # id -> decision stamp
        self.commands: dict[str, tuple[int, int]] = {}        # id -> (written, received), first
        node.create_subscription(SafetySignals, f'{namespace}/{topics.SAFETY_SIGNALS}',
                                 self.on_signals, EVERY)
        node.create_subscription(GateDecision, f'{namespace}/{topics.GATE_DECISIONS}',
                                 self.on_decision, EVERY)

    def on_signals(self, msg, info) -> None:
        self.signals[msg.proposal_id] = (from_time(msg.header.stamp),
                                         from_time(msg.evaluation_duration),
                                         info['source_timestamp'])

    def on_decision(self, msg, info) -> None:
        if msg.subject == GateDecision.SUBJECT_PROPOSAL:
            self.decisions[msg.proposal_id] = from_time(msg.header.stamp)

    def on_command(self, proposal_id: str, info) -> None:
        """The first command for this proposal."""
        self.commands[proposal_id] = (info['source_timestamp'], info['received_timestamp'])

    def table(self, sent: dict[str, int]) -> list[str]:
        """Median and p99 of each segment over the proposals seen end to end."""
        segments = {name: [] for name in BREAKDOWN}
        for pid, t0 in sent.items():
            if pid not in self.signals or pid not in self.decisions or pid not in self.commands:
                continue
            s_stamp, evaluation, s_written = self.signals[pid]
            decided = self.decisions[pid]
            c_written, c_received = self.commands[pid]
            for name, value in zip(BREAKDOWN, (
                    s_stamp - evaluation - t0, evaluation, s_written - s_stamp,
                    decided - s_written, c_written - decided, c_received - c_written,
                    c_received - t0)):
                segments[name].append(value * 1e-9)
        return [row(name, stats_ms(values)) for name, values in segments.items() if values]


BREAKDOWN = (
    'publish -> Oracle callback (DDS + dispatch)',
    'Oracle decode + score (evaluation_duration)',
    'Oracle sign + encode + publish()',
    'signals -> Gate verdict callback (DDS + dispatch)',
    'Gate verify + decide -> cmd_vel publish()',
    'cmd_vel -> received here (DDS)',
    'total',
)


class Sender:
    """Signed 20-point proposals, each with a linear.x unique among those in flight."""

    def __init__(self, node, key):
        self.node, self.key = node, key
        self.epoch, self.seq = time.time_ns(), 0

    def next(self) -> tuple[float, bytes, str]:
        self.seq += 1
        v = round(0.2 + (self.seq % 200) * 0.001, 6)
        p = straight(*START, v, seq=self.seq, stamp_ns=self.node.get_clock().now().nanoseconds)
        return (v, encode_proposal(dataclasses.replace(p, epoch=self.epoch), self.key),
                p.proposal_id)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of its children still running (the Gate's
    output process), from /proc; 0 for a process that is gone."""
    total = 0.0
    for p in [pid] + children_of(pid):
        try:
            fields = Path(f'/proc/{p}/stat').read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    return total


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                stat = Path(f'/proc/{entry}/stat').read_text()
                if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def run_block(chain: Chain, sender: Sender, count: int, record: bool) -> int:
    """Send ``count`` proposals at RATE; return how many got no command back."""
    cpu_before = {role: cpu_seconds(pid) for role, pid in chain.pids.items()} if record else {}
    chain.sent.clear()
    chain.record = record
    next_at = time.perf_counter()
    for _ in range(count):
        v, raw, pid = sender.next()
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if chain.breakdown is not None:
            chain.pid_of[v] = pid
        chain.sent[v] = t0 = time.time_ns()
        chain.pub.publish(raw)
        if chain.breakdown is not None and record:
            chain.ids[pid] = t0
        next_at += 1.0 / RATE
    drain = time.monotonic() + 0.5
    while chain.sent and time.monotonic() < drain:
        time.sleep(0.01)
    lost = len(chain.sent)
    chain.record = False
    for role, before in cpu_before.items():
        chain.cpu_s[role] = chain.cpu_s.get(role, 0.0) + cpu_seconds(chain.pids[role]) - before
    if record:
        chain.proposals += count
    return lost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--blocks', type=int, default=6)
    parser.add_argument('--per-block', type=int, default=250)
    parser.add_argument('--params', type=Path, default=package_config_dir() / 'flywheel.yaml')
    parser.add_argument('--breakdown', action='store_true',
                        help='also time each hop of the real chain (adds subscribers)')
    args = parser.parse_args(argv)
    load_start = load()
    keys = provision_keys()
    logs = Path(tempfile.mkdtemp(prefix='flywheel-bench-e2e-'))
    env = node_env()
    children = Children()
    graph = Graph(('oracle', 'gate'), args.params, env=env, log_dir=logs, namespace='/flywheel')
    receiver = odometry = None
    lost = {}
    print(f'logs in {logs}; about {(args.blocks * 2 * args.per_block / RATE + 30) / 60:.0f} min',
          file=sys.stderr, flush=True)
    try:
        for role in ('oracle', 'gate'):
            children.spawn([sys.executable, str(Path(__file__).parent / 'relay.py'), role,
                            '--ros-args', '-r', '__ns:=/baseline'], env=env,
                           stdout=open(logs / f'relay_{role}.log', 'wb'),
                           stderr=subprocess.STDOUT)
        graph.start()
        print('pids: ' + ', '.join(f'{n} {p.pid}' for n, p in graph.processes.items())
              + ', relays ' + ' '.join(str(p.pid) for p in children.processes),
              file=sys.stderr, flush=True)
        rclpy.init()
        node = rclpy.create_node('bench_driver')
        chains = [Chain(node, '/baseline'), Chain(node, '/flywheel')]
        chains[0].pids = dict(zip(('oracle', 'gate'), (p.pid for p in children.processes)))
        chains[1].pids = {role: p.pid for role, p in graph.processes.items()}
        if args.breakdown:
            chains[1].breakdown = Breakdown(node, '/flywheel')
        lost = {c.name: 0 for c in chains}
        receiver = Receiver(node)
        odometry = StandingOdometry([c.odom for c in chains],
                                    lambda: node.get_clock().now().nanoseconds, START)
        sender = Sender(node, load_message_key(keys / 'proposer.pem'))
        for chain in chains:                       # connect, then warm up (discarded)
            deadline = time.monotonic() + 60
            while chain.pub.get_subscription_count() < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{chain.name}: nodes never subscribed (logs in {logs})')
                time.sleep(0.05)
            for _ in range(20):
                if run_block(chain, sender, 50, record=False) < 5:
                    break
            else:
                raise RuntimeError(f'{chain.name}: commands never came back (logs in {logs})')
        for block in range(args.blocks):
            for chain in (chains if block % 2 == 0 else chains[::-1]):
                lost[chain.name] += run_block(chain, sender, args.per_block, True)
            print(f'block {block + 1}/{args.blocks} done', file=sys.stderr, flush=True)
    finally:
        if odometry is not None:
            odometry.close()
        if receiver is not None:
            receiver.close()
        rclpy.try_shutdown()
        graph.stop()
        for p in list(children.processes):     # the relays: Ctrl-C first, then SIGKILL
            p.send_signal(2)
            try:
                p.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass
        children.close()
    base, fly = chains
    ratio = {k: stats_ms(fly.received)[k] / stats_ms(base.received)[k] for k in ('p50', 'p99')}
    f = stats_ms(fly.received)
    print(f'machine: {machine()}')
    print(f'command: {command_line()}')
    print(f'transport: UDP only (nodes and driver: {TRANSPORT}); load average at start '
          f'{load_start}, at end {load()}')
    print(f'{RATE:.0f} Hz, 20-point signed proposals, {args.blocks} alternating blocks of '
          f'{args.per_block} per chain; latency = command received (DDS reception) - proposal '
          'published\n')
    print(HEADER)
    print(row('Proposer -> Oracle -> Gate -> cmd_vel', f))
    print(row('baseline: bare relay chain, same hops', stats_ms(base.received)))
    print(row('(callback ran in the driver) flywheel', stats_ms(fly.handled)))
    print(row('(callback ran in the driver) baseline', stats_ms(base.handled)))
    print('\nCPU time per proposal (ms, user + system over the recorded blocks): '
          + '; '.join(f'{chain.name} {role} {cpu / max(chain.proposals, 1) * 1e3:.2f}'
                      for chain in chains for role, cpu in chain.cpu_s.items()))
    print(f'\ntargets: p50 {f["p50"]:.2f} ms (<= {TARGET_P50_MS:g}: '
          f'{"met" if f["p50"] <= TARGET_P50_MS else "MISSED"}), p99 {f["p99"]:.2f} ms (<= '
          f'{TARGET_P99_MS:g}: {"met" if f["p99"] <= TARGET_P99_MS else "MISSED"}), ratio '
          f'flywheel / baseline p50 {ratio["p50"]:.2f} (<= {TARGET_RATIO:g}: '
          f'{"met" if ratio["p50"] <= TARGET_RATIO else "MISSED"}), p99 {ratio["p99"]:.2f}')
    print(f'proposals without a command: flywheel {lost["flywheel"]}, '
          f'baseline {lost["baseline"]}')
    print(PEER)
    if fly.breakdown is not None:
        print('\nwhere the time goes in the real chain (--breakdown: the stamps in its messages; '
              'with the extra subscribers, the total differs from the table above)\n')
        print(HEADER.replace('| case |', '| segment |'))
        for line in fly.breakdown.table(fly.ids):
            print(line)
    return 0


if __name__ == '__main__':
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print('interrupted: every process this benchmark started is stopped', file=sys.stderr)
        raise SystemExit(130)
