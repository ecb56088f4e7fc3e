"""Real-node fixtures: a probe node in this process (its own context) and node graphs started as
separate processes, always stopped at teardown, even when the test fails."""
from __future__ import annotations

import os
import time
from typing import Callable

import pytest

rclpy = pytest.importorskip('rclpy')

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from flywheel.cli.graph import Graph  # noqa: E402
from test.conftest import CONFIG  # noqa: E402


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


def wait_matched(probe: Probe, entity, timeout: float = 20.0) -> None:
    """Block until a publisher has a subscriber (or a subscription a publisher)."""
    count = (entity.get_subscription_count if hasattr(entity, 'get_subscription_count')
             else entity.get_publisher_count)
    assert probe.spin_until(lambda: count() > 0, timeout), f'nothing matched {entity.topic_name}'
