"""The lifecycle manager's heartbeat against a real Oracle process frozen with SIGSTOP: frozen for
less than heartbeat_timeout (several questions unanswered, as on a loaded machine or with a lost
response) the graph is kept; frozen for longer, the manager ends with exit code 1, naming the
silent node. (A node that leaves active: test_cli.py.)"""
from __future__ import annotations

import os
import signal
import time

import pytest
from lifecycle_msgs.srv import GetState

from flywheel.cli.graph import MANAGER, managed_overrides

pytestmark = pytest.mark.ros

PERIOD, TIMEOUT = 0.2, 1.5


def log_says(path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors='replace')


@pytest.mark.slow
def test_a_frozen_node_is_forgiven_until_the_heartbeat_timeout_and_not_after(
        probe, start_graph, tmp_path):
    overrides = managed_overrides(('oracle',))
    overrides[MANAGER].update(heartbeat_period=PERIOD, heartbeat_timeout=TIMEOUT)
    graph = start_graph(['oracle', MANAGER], overrides)
    oracle, manager = graph.processes['oracle'], graph.processes[MANAGER]
    log = tmp_path / 'logs' / f'{MANAGER}.log'
    assert probe.spin_until(lambda: log_says(log, 'all nodes active; watching them'), 60.0), \
        log.read_text(errors='replace') if log.exists() else 'no log'
    get_state = probe.node.create_client(GetState, '/oracle/get_state')
    assert get_state.wait_for_service(timeout_sec=10)

    def answers_active() -> bool:
        future = get_state.call_async(GetState.Request())
        return (probe.spin_until(future.done, 5.0)
                and future.result().current_state.label == 'active')
    try:
        # Frozen for four heartbeat periods, well inside the timeout: forgiven.
        os.kill(oracle.pid, signal.SIGSTOP)
        time.sleep(4 * PERIOD)      # the adversary's freeze, not a wait for the system
        os.kill(oracle.pid, signal.SIGCONT)
        assert answers_active()
        # Kept: the manager runs on through a whole timeout after the Oracle answered again.
        assert not probe.spin_until(lambda: manager.poll() is not None, TIMEOUT + 1.0), \
            log.read_text(errors='replace')
        # Frozen for good: ended within the timeout and a heartbeat period or two.
        os.kill(oracle.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        assert probe.spin_until(lambda: manager.poll() is not None, TIMEOUT + 10.0)
        assert time.monotonic() - frozen >= TIMEOUT
    finally:
        os.kill(oracle.pid, signal.SIGCONT)
    assert manager.returncode == 1
    assert log_says(log, 'oracle has not answered that it is active for')
