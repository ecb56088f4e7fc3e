"""`flywheel`: main(argv) -> exit code; errors are mapped to codes and one-line messages here,
in one place (EXIT_CODES)."""
from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flywheel.errors import FlywheelError, NodeUnreachableError, GraphError, ReleaseError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_FAILED = EXIT_REFUSED

# The one map from errors to exit codes; the first class that matches wins.
EXIT_CODES: tuple[tuple[type[FlywheelError], int], ...] = (
    (NodeUnreachableError, EXIT_UNREACHABLE),
    (ReleaseError, EXIT_REFUSED),
    (GraphError, EXIT_FAILED),
    (FlywheelError, EXIT_USAGE),
)

DESCRIPTION = """\
Operate the Alignment Flywheel safety layer: a Gate between any planner and the robot that
republishes only commands a signed Oracle release approves.

  run          up (--robots N for a fleet), demo, demo --story (the flywheel end to end)
  this robot   keys init (node keys and a trust root), world export (--sdf for Gazebo)
  releases     keygen, release build|sign|verify (offline), release push, status, rollback,
               rollout status|promote|abort
  trust root   root init|sign|rotate|verify (offline)
  audit        audit verify|gaps|query|export, incident report|list
  governance   governance run (agents offline: a candidate release), governance candidates

`flywheel COMMAND --help` says more about each command."""

EPILOG = """\
exit codes:
  0  done
  1  refused or failed: a release, trust root, key or rollback did not verify, governance refused
     it, or a node of `up` exited
  2  usage: a bad option or value, an unreadable or malformed input file
  3  governance unreachable, or no answer in time (it may still act: see `flywheel status`)"""


def exit_code(exc: FlywheelError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


def default_params() -> Path:
    from flywheel.ros.params import package_config_dir
    return package_config_dir() / 'flywheel.yaml'


def cmd_up(args) -> int:
    from flywheel.cli.graph import (GRAPH, OPTIONAL, fleet, participants, robot_namespaces,
                                    ros_home, stop_all)
    from flywheel.ros.transport import widen_discovery
    nodes = tuple(args.only.split(',')) if args.only else GRAPH
    nodes += tuple(n for n in (args.with_nodes.split(',') if args.with_nodes else ())
                   if n not in nodes)
    unknown = sorted(set(nodes) - set(GRAPH) - set(OPTIONAL))
    if unknown:
        raise FlywheelError(f'unknown node {unknown[0]!r} (known: '
                            f'{", ".join(GRAPH + OPTIONAL)})')
    params = Path(args.params) if args.params else default_params()
    if not params.is_file():
        raise FlywheelError(f'--params: no such file {params}')
    from flywheel.cli.keys import ensure_keys
    from flywheel.provision import default_key_dir
    ensure_keys(default_key_dir())       # where the nodes look unless params say otherwise
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    graphs = fleet(nodes, params, robot_namespaces(args.robots))
    env = dict(os.environ)
    widened = widen_discovery(env, participants(graphs), ros_home() / 'alignment_flywheel' / 'dds')
    if widened:
        print(f'flywheel up: {widened}', flush=True)
    processes: dict[str, subprocess.Popen] = {}

    def exited() -> dict[str, int]:
        return {n: p.returncode for n, p in processes.items() if p.poll() is not None}
    try:
        # a robot at a time: the next starts once this one's processes have their DDS
        # participants (started all at once, a fleet's processes starve each other on a small
        # host, and participants are created one at a time: flywheel.ros.transport)
        for g in graphs:
            g.env = env
            g.start()
            started = {f'{g.namespace}/{n}'.lstrip('/'): p for n, p in g.processes.items()}
            processes.update(started)
            print(f'flywheel up: {", ".join(f"{n} (pid {p.pid})" for n, p in started.items())}',
                  flush=True)
            while not stopping and not exited() and not g.participants_created():
                time.sleep(0.05)
            if stopping or exited():
                break
        else:
            print('flywheel up: every node started; Ctrl-C stops', flush=True)
        while not stopping and not exited():
            time.sleep(0.2)
    finally:
        died, asked = exited(), bool(stopping)   # a Ctrl-C while stopping changes neither
        codes = {f'{g.namespace}/{n}'.lstrip('/'): c
                 for g, stopped in zip(graphs, stop_all(graphs)) for n, c in stopped.items()}
    if died and not asked:
        print(f'flywheel up: {", ".join(f"{n} exited with {c}" for n, c in died.items())}; '
              'stopped the rest', file=sys.stderr)
        return EXIT_FAILED
    print('flywheel up: all nodes stopped', flush=True)
    cut = [n for n, c in codes.items() if c == -signal.SIGALRM]
    if cut:     # done with their own work; ROS's teardown hung and was bounded (flywheel.ros.run)
        print(f'flywheel up: warning: the ROS teardown of {", ".join(cut)} hung and was cut '
              'short (its threads\' stacks are in its log)', file=sys.stderr)
    unclean = {n: c for n, c in codes.items() if c not in (0, -signal.SIGINT, -signal.SIGALRM)}
    if unclean:     # killed after the grace period (a negative signal number) or failed
        print(f'flywheel up: {", ".join(f"{n} exited with {c}" for n, c in unclean.items())} '
              'on stop', file=sys.stderr)
    return EXIT_FAILED if unclean else EXIT_OK


def cmd_demo(args) -> int:
    if args.story:
        from flywheel.cli.story import run_story
        return run_story(Path(args.out or 'reports/story'),
                         watch_after=args.duration if args.duration is not None else 20.0,
                         seed=args.seed)
    from flywheel.cli.demo import run_demo
    return run_demo(duration=args.duration if args.duration is not None else 30.0,
                    out_dir=Path(args.out or 'reports/demo'),
                    seed=args.seed if args.seed is not None else 5, fault_rate=args.fault_rate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='flywheel', description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    up = sub.add_parser('up', help='start the node graph as separate processes; Ctrl-C stops it')
    up.add_argument('--params', help='parameter YAML (default: the package config/flywheel.yaml)')
    up.add_argument('--only', help='comma-separated subset of nodes, e.g. oracle,gate')
    up.add_argument('--with', dest='with_nodes',
                    help='optional nodes to add: governance (the Oracle and the Gate then follow '
                    'it)')
    up.add_argument('--robots', type=int, default=0, metavar='N',
                    help='a fleet: N robots in namespaces robot_0 ... robot_{N-1}, each with '
                    'its own nodes, under one governance (default: one robot, no namespace)')
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser('demo', help='run the embedded world with faults, gated and bypassed; '
                          '--story: the flywheel end to end')
    demo.add_argument('--story', action='store_true',
                      help='the story: a hazard release 1 does not know, its incidents, the '
                      'refined release signed with demo keys and rolled out shadow -> canary -> '
                      'full, the same Proposer process throughout (about 2 minutes)')
    demo.add_argument('--duration', type=float, default=None,
                      help='seconds per run (default 30); with --story, seconds watched after '
                      'the rollout reaches full (default 20)')
    demo.add_argument('--out', default=None,
                      help='report folder (default reports/demo, with --story reports/story)')
    demo.add_argument('--seed', type=int, default=None,
                      help='fault injection seed (default 5; with --story the story\'s own, '
                      'whose first fault meets the hazard)')
    demo.add_argument('--fault-rate', type=float, default=0.02,
                      help='chance per proposal of a fault episode (default 0.02)')
    demo.set_defaults(func=cmd_demo)
    from flywheel.cli import audit, keys, release
    release.add_commands(sub)
    keys.add_commands(sub)
    __import__('flywheel.cli.world', fromlist=['add_commands']).add_commands(sub)
    audit.add_commands(sub)
    __import__('flywheel.cli.governance', fromlist=['add_commands']).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # a crash (a segfault inside a DDS library) prints every thread's Python stack, not nothing:
    # a `release push` once died so under `make stress` and left no trace of where
    if not faulthandler.is_enabled() and sys.__stderr__ is not None:   # (pytest's own)
        faulthandler.enable(sys.__stderr__, all_threads=True)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:           # argparse: --help (0) or a usage error (2, printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except FlywheelError as exc:
        print(f'flywheel {args.command}: {exc}', file=sys.stderr)
        return exit_code(exc)


if __name__ == '__main__':
    sys.exit(main())
