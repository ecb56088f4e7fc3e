"""Fail-closed reaction: the Oracle process is killed (SIGKILL) while proposals stream at 50 Hz;
how long after the last approved command does the Gate's stop arrive?

Target (issue): <= command_timeout + one Gate tick (0.3 s + 0.02 s with config/flywheel.yaml).
Measured at the receiver, so the figure includes DDS delivery of the stop.

    scripts/run.sh python bench/fail_closed.py [--trials 20]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import isolate_ros, machine  # noqa: E402

isolate_ros()

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402

from alignment_flywheel.msg import Proposal  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import proposal_to_msg  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

PERIOD = 1.0 / 50.0


def trial(node, executor, pub, commands, params, logs, seq) -> float:
    commands.clear()
    graph = Graph(('oracle', 'gate'), params, log_dir=logs).start()
    try:
        deadline = time.monotonic() + 30
        while pub.get_subscription_count() < 2 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        next_at, killed = time.monotonic(), None
        while True:
            now = time.monotonic()
            if now >= next_at:
                seq[0] += 1
                pub.publish(proposal_to_msg(straight(1.5, 1.0, 0.0, 0.5, seq=seq[0],
                                                     stamp_ns=node.get_clock().now().nanoseconds)))
                next_at += PERIOD
            executor.spin_once(timeout_sec=0.002)
            going = [t for t, c in commands if c.linear.x != 0.0]
            if killed is None and len(going) >= 25:
                os.kill(graph.processes['oracle'].pid, signal.SIGKILL)
                killed = time.monotonic()
            if killed is not None:
                stops = [t for t, c in commands if going and t > going[-1] and c.linear.x == 0.0]
                if stops:
                    return stops[0] - going[-1]
                if time.monotonic() - killed > 5.0:
                    raise RuntimeError('no stop within 5 s of the kill')
            if time.monotonic() > deadline + 30:
                raise RuntimeError('the loop never got going')
    finally:
        graph.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--trials', type=int, default=20)
    args = parser.parse_args(argv)
    params = package_config_dir() / 'flywheel.yaml'
    gate = yaml.safe_load(params.read_text())['gate']['ros__parameters']
    budget = gate['command_timeout'] + gate['tick_period']
    logs = Path(tempfile.mkdtemp(prefix='flywheel-bench-'))
    rclpy.init()
    node = rclpy.create_node('bench_fail_closed')
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    pub = node.create_publisher(Proposal, topics.PROPOSALS, qos.STREAM)
    commands: list = []
    node.create_subscription(Twist, topics.CMD_VEL,
                             lambda m: commands.append((time.monotonic(), m)), qos.COMMAND)
    seq, reactions = [0], []
    try:
        for _ in range(args.trials):
            reactions.append(trial(node, executor, pub, commands, params, logs, seq))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    r = np.asarray(reactions) * 1e3
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/fail_closed.py --trials {args.trials}')
    print(f'Oracle SIGKILLed mid-stream, {args.trials} trials; budget command_timeout + tick = '
          f'{budget * 1e3:.0f} ms\n')
    print('| trials | p50 (ms) | p99 (ms) | max (ms) | within budget |\n|---|---|---|---|---|')
    print(f'| {len(r)} | {np.percentile(r, 50):.1f} | {np.percentile(r, 99):.1f} | {r.max():.1f} | '
          f'{int((r <= budget * 1e3).sum())}/{len(r)} |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
