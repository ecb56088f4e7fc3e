"""`flywheel demo`: the embedded world with fault injection, once gated and once bypassed.

Each run starts the real node processes on its own ROS domain and watches them with a Recorder in
this process. The exit code is 0 only if the gated run had no collision.
"""
from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from flywheel.cli.graph import Graph
from flywheel.errors import GraphError
from flywheel.provision import NODE_KEYS, ROOT, provision
from flywheel.report import RunRecord, table, write_report

STARTUP_TIMEOUT = 30.0
DRAIN_TIMEOUT = 2.0   # s the proposals counted last may wait for their decisions (the Gate's own
                      # proposal_timeout is 0.5 s: past that, a missing decision is a finding)


def run_demo(duration: float, out_dir: Path, seed: int, fault_rate: float) -> int:
    from flywheel.oracle.spec import load_spec
    from flywheel.ros.params import package_config_dir
    from flywheel.sim.world import load_world

    config = package_config_dir()
    ledger = out_dir / 'audit.sqlite'
    for stale in out_dir.glob('audit*'):          # each demo starts its own flight record
        stale.unlink()
    base_domain = int(os.environ.get('ROS_DOMAIN_ID', 1 + os.getpid() % 80))
    # Demo keys, made for this run and labelled as such: never the robot's own.
    keys = out_dir / 'demo-keys'
    shutil.rmtree(keys, ignore_errors=True)
    provision(keys, datetime.now(timezone.utc), expires_days=1)
    runs = []
    for offset, mode in enumerate(('gated', 'bypass')):
        print(f'flywheel demo: {mode} run, {duration:.0f} s, fault_rate {fault_rate}, '
              f'seed {seed} ...', flush=True)
        runs.append(run_scenario(mode, duration, seed, fault_rate, config / 'flywheel.yaml',
                                 base_domain + offset, out_dir / 'logs' / mode, ledger, keys))
    settings = {'duration_s': duration, 'seed': seed, 'fault_rate': fault_rate}
    summary, picture = write_report(out_dir, runs, load_world(config / 'world.yaml'),
                                    load_spec(config / 'oracle_spec.yaml'), settings)
    print()
    print(table(runs))
    print(f'\nreport: {summary}\nmap:    {picture}')
    print(f'ledger: {ledger} ({audit_summary(ledger)}); try `flywheel audit query {ledger} '
          '--action BLOCK` or `flywheel audit export ... --mcap flight.mcap`')
    gated = runs[0]
    if gated.collisions:
        print(f'FAIL: {len(gated.collisions)} collisions with the Gate on')
        return 1
    print(f'OK: no collision with the Gate on ({len(runs[1].collisions)} with it bypassed)')
    return 0


def audit_summary(ledger: Path) -> str:
    from flywheel.audit.keys import load_public_key
    from flywheel.audit.ledger import connect
    from flywheel.audit.verify import verify_ledger
    conn = connect(ledger, readonly=True)
    try:
        key = load_public_key(ledger.with_name('audit_key.pem.pub').read_bytes())
        return verify_ledger(conn, key).summary()
    finally:
        conn.close()


def run_scenario(mode: str, duration: float, seed: int, fault_rate: float, params: Path,
                 domain_id: int, log_dir: Path, ledger: Path, keys: Path) -> RunRecord:
    """Run the graph for ``duration`` seconds after the robot's first odometry."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from flywheel.ros.bypass_relay import BypassRelay
    from flywheel.ros.client import warn
    from flywheel.ros.recorder import Recorder
    from flywheel.ros.transport import creating_participant

    nodes = ('sim', 'audit', 'oracle', 'gate', 'proposer') if mode == 'gated' else ('sim',
                                                                                 'proposer')
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id))
    overrides = {'proposer': {'fault_rate': fault_rate, 'fault_seed': seed,
                              'signing_key_path': str(keys / NODE_KEYS['proposer'])},
                 'audit': {'ledger_path': str(ledger)},
                 'oracle': {'signing_key_path': str(keys / NODE_KEYS['oracle'])},
                 'gate': {'trust_root_path': str(keys / ROOT)}}
    context = Context()
    rclpy.init(context=context, domain_id=domain_id, args=[])
    executor = SingleThreadedExecutor(context=context)
    with creating_participant(warn):
        recorder = Recorder(RunRecord(mode), gated=mode == 'gated', context=context)
    watchers = [recorder]
    if mode == 'bypass':
        watchers.append(BypassRelay(context=context))
    for node in watchers:
        executor.add_node(node)
    try:
        with Graph(nodes, params, overrides, env, log_dir) as graph:
            # The world first: once the recorder hears it, start the rest, so the record
            # covers the robot's first move.
            graph.start(('sim', 'audit') if mode == 'gated' else ('sim',))
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while recorder.first_odom_ns is None:
                _check_alive(graph, log_dir)
                if time.monotonic() > deadline:
                    raise GraphError(f'no odometry within {STARTUP_TIMEOUT:.0f} s; see {log_dir}')
                executor.spin_once(timeout_sec=0.1)
            graph.start()
            # count from the moment the whole chain is heard: proposals published before the
            # Gate had discovered the Proposer never reach it, and are not the Gate's to decide
            while not recorder.connected:
                _check_alive(graph, log_dir)
                if time.monotonic() > deadline + STARTUP_TIMEOUT:
                    raise GraphError(f'graph not connected within {STARTUP_TIMEOUT:.0f} s; '
                                     f'see {log_dir}')
                executor.spin_once(timeout_sec=0.05)
            recorder.restart()
            started = time.monotonic()
            while time.monotonic() - started < duration:
                _check_alive(graph, log_dir)
                executor.spin_once(timeout_sec=0.05)
            recorder.record.duration = time.monotonic() - started
            # Every proposal counted gets its decision before the record closes: the ones
            # published in the last moment are in flight, not lost.
            recorder.close()
            drained = time.monotonic() + DRAIN_TIMEOUT
            while recorder.undecided and time.monotonic() < drained:
                executor.spin_once(timeout_sec=0.05)
            recorder.finish()
    finally:
        for node in watchers:
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        context.try_shutdown()
    return recorder.record


def _check_alive(graph: Graph, log_dir: Path) -> None:
    died = graph.exited()
    if died:
        raise GraphError(f'node exited early: {died}; see {log_dir}')
