"""End-to-end latency: proposal published -> gated command received, over DDS loopback at 50 Hz.

Three processes per chain (this driver, Oracle, Gate). The baseline is a bare relay chain with the
same hops and message types (bench/relay.py), alive at the same time in another namespace; the
driver alternates blocks between the two chains so both see the same machine noise.

    scripts/run.sh python bench/end_to_end.py [--blocks 6] [--per-block 250]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, isolate_ros, machine, row, stats_ms  # noqa: E402

isolate_ros()

import rclpy  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402

from alignment_flywheel.msg import Proposal  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.ros import qos  # noqa: E402
from flywheel.ros.convert import proposal_to_msg  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

RATE = 50.0


class Chain:
    def __init__(self, node, namespace: str):
        self.name = namespace.strip('/')
        self.pub = node.create_publisher(Proposal, f'{namespace}/proposals', qos.STREAM)
        node.create_subscription(Twist, f'{namespace}/cmd_vel', self.on_command, qos.COMMAND)
        self.sent: dict[float, float] = {}
        self.latencies: list[float] = []

    def on_command(self, msg: Twist) -> None:
        sent = self.sent.pop(round(msg.linear.x, 6), None)
        if sent is not None:
            self.latencies.append(time.perf_counter() - sent)


def run_block(node, executor, chain: Chain, count: int, seq: list, record: bool) -> int:
    """Send ``count`` proposals at RATE; return how many got no command back."""
    chain.sent.clear()
    before = len(chain.latencies)
    next_at = time.perf_counter()
    for k in range(count):
        seq[0] += 1
        v = round(0.2 + (seq[0] % 200) * 0.001, 6)     # unique per proposal in flight
        msg = proposal_to_msg(straight(1.5, 1.0, 0.0, v, seq=seq[0],
                                       stamp_ns=node.get_clock().now().nanoseconds))
        while time.perf_counter() < next_at:
            executor.spin_once(timeout_sec=max(0.0, next_at - time.perf_counter()))
        chain.sent[v] = time.perf_counter()
        chain.pub.publish(msg)
        next_at += 1.0 / RATE
    drain = time.perf_counter() + 0.5
    while chain.sent and time.perf_counter() < drain:
        executor.spin_once(timeout_sec=0.01)
    lost = len(chain.sent)
    if not record:
        del chain.latencies[before:]
    return lost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--blocks', type=int, default=6)
    parser.add_argument('--per-block', type=int, default=250)
    args = parser.parse_args(argv)
    params = package_config_dir() / 'flywheel.yaml'
    relays = [subprocess.Popen([sys.executable, str(Path(__file__).parent / 'relay.py'), role,
                                '--ros-args', '-r', '__ns:=/baseline'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
              for role in ('oracle', 'gate')]
    logs = Path(tempfile.mkdtemp(prefix='flywheel-bench-'))
    graph = Graph(('oracle', 'gate'), params, log_dir=logs, namespace='/flywheel').start()
    rclpy.init()
    node = rclpy.create_node('bench_driver')
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    chains = [Chain(node, '/baseline'), Chain(node, '/flywheel')]
    seq, lost = [0], {c.name: 0 for c in chains}
    try:
        for chain in chains:                       # connect, then warm up (discarded)
            deadline = time.monotonic() + 30
            while chain.pub.get_subscription_count() < 2 and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            run_block(node, executor, chain, 100, seq, record=False)
        for block in range(args.blocks):
            for chain in (chains if block % 2 == 0 else chains[::-1]):
                lost[chain.name] += run_block(node, executor, chain, args.per_block, seq, True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        graph.stop()
        for relay in relays:
            relay.send_signal(2)
            relay.wait(timeout=10)
    base, fly = stats_ms(chains[0].latencies), stats_ms(chains[1].latencies)
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/end_to_end.py --blocks {args.blocks} '
          f'--per-block {args.per_block}')
    print(f'{RATE:.0f} Hz, 20-point proposals, {args.blocks} alternating blocks per chain\n')
    print(HEADER)
    print(row('Proposer -> Oracle -> Gate -> cmd_vel', fly))
    print(row('baseline: bare relay chain, same hops', base))
    print(f'\nratio flywheel / baseline: p50 {fly["p50"] / base["p50"]:.2f} (target <= 1.3), '
          f'p99 {fly["p99"] / base["p99"]:.2f}')
    print(f'proposals without a command: flywheel {lost["flywheel"]}, '
          f'baseline {lost["baseline"]}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
