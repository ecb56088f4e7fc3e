"""Nav2-style stop and false-stop figures, without Nav2: a stand-in controller publishes Twist at
20 Hz (0.5 m/s straight ahead) into the Proposer in adapter mode; the Oracle, the Gate and the sim
are real processes (the machinery is test/ros/standin.py, shared with
test/ros/test_nav2_standin.py, which asserts the bar on a few runs).

Runs alternate between two worlds, each on a fresh sim process (the Oracle, Gate and Proposer keep
running, as on a robot):
  obstacle  the robot starts 1.7 m in front of a shelf, facing it. Time to stop: from the Gate's
            decisive refusal (BLOCK/FALLBACK/ESCALATE, the decision's header stamp; the first
            after the last approval) to the first odometry of the robot's final rest (its
            stamp); the rest must last 1 s while the controller keeps pushing. Refusals the
            robot drove on after (an approval followed) are counted as interruptions.
  free      the same controller along a free corridor for 4 s (2 m): any refusal or zero-speed
            odometry after the robot moved is a false stop.

nav2_collision_monitor's dataset bar: stop <= 0.6 s, false stops <= 5 %. Our aim: <= 0.35 s and
no false stop.

    scripts/run.sh python bench/nav2_stop.py [--runs 50] [--hog]

--hog runs every process against one busy-looping process per core. Progress on stderr, the
table on stdout. About 10 s per pair of runs on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Children, CpuHog, command_line, isolate_ros, load, machine,  # noqa: E402
                    node_env, provision_keys)

TRANSPORT = isolate_ros()

import numpy as np  # noqa: E402

from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.ros import standin  # noqa: E402

BAR_STOP, BAR_FALSE = 0.6, 0.05
AIM_STOP = 0.35


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=50, help='runs of each kind (default 50)')
    parser.add_argument('--hog', action='store_true', help='one busy loop per core throughout')
    args = parser.parse_args()
    children = Children()
    provision_keys()
    scratch = Path(tempfile.mkdtemp(prefix='flywheel-bench-nav2-'))
    config = package_config_dir()
    params = config / 'flywheel.yaml'
    env = node_env()
    worlds = {kind: standin.world_with_start(config / 'world.yaml', scratch, start)
              for kind, start in (('obstacle', standin.OBSTACLE_START),
                                  ('free', standin.FREE_START))}
    starts = {'obstacle': standin.OBSTACLE_START, 'free': standin.FREE_START}
    runs: list[standin.Run] = []
    gated = Graph(('oracle', 'gate', 'proposer'), params, {'proposer': {'mode': 'adapter'}}, env,
                  scratch / 'logs')
    stand_in = None
    hog = CpuHog(children) if args.hog else None
    try:
        gated.start()
        stand_in = standin.StandIn(int(os.environ['ROS_DOMAIN_ID']))
        if hog:
            hog.__enter__()
        for i in range(args.runs):
            for kind in ('obstacle', 'free'):
                def start_sim(kind=kind):
                    return Graph(('sim',), params, {'sim': {'world_path': str(worlds[kind])}},
                                 env, scratch / 'logs').start()
                run = stand_in.run(kind, starts[kind], start_sim, lambda g: g.stop())
                runs.append(run)
                print(f'{i + 1}/{args.runs} {kind}: moved {run.moved}, stop {run.time_to_stop}, '
                      f'stops {run.stops}, starved {run.starved}, {run.distance:.2f} m '
                      f'{run.notes}', file=sys.stderr, flush=True)
    finally:
        if hog:
            hog.__exit__()
        if stand_in is not None:
            stand_in.close()
        gated.stop()
        children.close()
    print(table(runs, args))
    return 0


def table(runs: list[standin.Run], args) -> str:
    obstacle = [r for r in runs if r.kind == 'obstacle']
    free = [r for r in runs if r.kind == 'free']
    stops = np.array([r.time_to_stop for r in obstacle if r.time_to_stop is not None]) * 1e3
    unmeasured = sum(1 for r in obstacle if r.time_to_stop is None)
    false_runs = sum(1 for r in free if r.stops)
    starved_runs = sum(1 for r in free if r.starved and not r.stops)
    moved = [r for r in free if r.moved]
    rate = false_runs / len(free) if free else float('nan')
    lines = [
        f'Machine: {machine()}; load {load()}; measured {time.strftime("%Y-%m-%d")}'
        + ('; with a busy loop per core' if args.hog else ''),
        '',
        '```bash',
        command_line(),
        '```',
        '',
        'Stand-in controller: Twist at 20 Hz, 0.5 m/s straight ahead, into the adapter-mode '
        'Proposer; Oracle, Gate, sim as processes',
        '',
        '| case | runs | p50 (ms) | p99 (ms) | mean (ms) | max (ms) | bar | aim |',
        '|---|---|---|---|---|---|---|---|',
    ]
    if len(stops):
        lines.append(f'| time to stop (decisive refusal -> zero speed in odometry) | '
                     f'{len(stops)} | {np.percentile(stops, 50):.1f} | '
                     f'{np.percentile(stops, 99):.1f} | '
                     f'{stops.mean():.1f} | {stops.max():.1f} | <= {BAR_STOP * 1e3:.0f} | '
                     f'<= {AIM_STOP * 1e3:.0f} |')
    lines += [
        '',
        '| case | runs | stopped | rate | bar | aim |',
        '|---|---|---|---|---|---|',
        f'| false stops on a free corridor (4 s, 2 m) | {len(free)} | {false_runs} | '
        f'{rate:.1%} | <= {BAR_FALSE:.0%} | 0 |',
        f'| fail-closed stops for lateness only (not counted above) | {len(free)} | '
        f'{starved_runs} | {starved_runs / len(free) if free else float("nan"):.1%} | | |',
        '',
        f'obstacle runs: {len(obstacle)}, stop not measured in {unmeasured}, held after the stop '
        f'in {sum(1 for r in obstacle if r.stayed_stopped)}, interrupted approaches '
        f'{sum(1 for r in obstacle if r.stops)}, collisions '
        f'{sum(1 for r in runs if r.collided)}; free runs that moved: {len(moved)}/{len(free)}, '
        f'mean distance {np.mean([r.distance for r in moved]) if moved else 0:.2f} m',
    ]
    reasons = sorted({tuple(r.refusal_reasons) for r in obstacle if r.refusal_reasons})
    if reasons:
        lines.append(f'decisive refusal reasons (GateDecision.REASON_*): {reasons}')
    spurious = sorted({n for r in runs for n in r.notes if 'reasons' in n})
    if spurious:
        lines.append('refusals without an obstacle in reach: ' + '; '.join(spurious))
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
