"""One main() shape for every node: init, build (a bad configuration exits 2 with a clear error,
never a traceback), spin until Ctrl-C or SIGTERM, destroy, shut down."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from flywheel.errors import FlywheelError

EXIT_BAD_CONFIG = 2


def run_node(name: str, build: Callable[[], Node], argv: list[str] | None = None) -> int:
    try:
        rclpy.init(args=argv if argv is not None else sys.argv)
    except Exception as exc:  # noqa: BLE001 - rcl reports a bad --params-file this way
        print(f'[FATAL] [{name}]: refusing to start: cannot initialise ROS: {exc}',
              file=sys.stderr)
        return EXIT_BAD_CONFIG
    node = None
    try:
        try:
            node = build()
        except (FlywheelError, ValueError, ParameterException) as exc:
            rclpy.logging.get_logger(name).fatal(f'refusing to start: {exc}')
            return EXIT_BAD_CONFIG
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # Ctrl-C shuts the context down from the signal handler; a callback caught half-way
            # (e.g. taking a message) then fails. That is a clean stop, not a crash.
            if node.context.ok():
                raise
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
