"""One service call from a command-line tool (`flywheel release push`, `status`, `rollback`,
`rollout`, `incident report`). The tool's short-lived participant joins the graph the way its
nodes do: on the same transport profile, and created one at a time with them on this host. Its
participant created at the same moment as a starting graph's could miss those nodes for good
(flywheel.ros.transport), and the call would wait out its timeout on a running graph."""
from __future__ import annotations

import sys

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from flywheel.errors import NodeTimeoutError, NodeUnreachableError
from flywheel.ros.transport import configure_transport, creating_participant


def warn(message: str) -> None:
    print(f'warning: {message}', file=sys.stderr)


def call(service_type, name: str, request, timeout: float, absent: str):
    """The reply of service ``name`` to ``request``; NodeUnreachableError(``absent``) if nothing
    serves it within ``timeout`` s, NodeTimeoutError if the reply does not come within another."""
    configure_transport()
    context = Context()
    rclpy.init(context=context, args=[])
    try:
        with creating_participant(warn):
            node = rclpy.create_node('flywheel_operator', context=context)
        executor = SingleThreadedExecutor(context=context)
        try:
            client = node.create_client(service_type, name)
            if not client.wait_for_service(timeout_sec=timeout):
                raise NodeUnreachableError(absent)
            future = client.call_async(request)
            executor.add_node(node)
            executor.spin_until_future_complete(future, timeout_sec=timeout)
            if not future.done():
                raise NodeTimeoutError(f'{name}: no answer within {timeout:g} s')
            return future.result()
        finally:
            # in the order the nodes take down theirs (flywheel.ros.run): the executor first,
            # not left to the garbage collector after the context is gone
            executor.shutdown()
            node.destroy_node()
    finally:
        context.try_shutdown()
