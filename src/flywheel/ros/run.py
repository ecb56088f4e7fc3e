"""One main() shape for every node: choose the transport, init, build (a bad configuration exits
2 with a clear error, never a traceback), spin (the events executor, unless the node asks for
another with ``make_executor``) until Ctrl-C or SIGTERM, let the node act on the
way out (the Gate publishes stop while its publisher still works), destroy, shut down.

Signals are handled here, not by rclpy: rclpy's handler shuts the context down first, after which
no node can publish anything, not even a stop.
"""
from __future__ import annotations

import faulthandler
import gc
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Callable

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from flywheel.errors import FlywheelError
from flywheel.supervisor import follow_supervisor
from flywheel.ros.transport import configure_transport, creating_participant

EXIT_BAD_CONFIG = 2
TEARDOWN_S = 3.0


def wall_now() -> datetime:
    """Expiry is a security check: it runs on the wall clock, never on (sim) ROS time."""
    return datetime.now(timezone.utc)


def autostart(node):
    """Configure and activate a lifecycle node whose ``autostart`` parameter is set (no
    lifecycle manager drives it); a failed configuration refuses to start (exit 2)."""
    from rclpy.lifecycle import TransitionCallbackReturn
    if node.config.autostart:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise FlywheelError(getattr(node, 'problem', '')
                                or f'{node.get_name()} failed to configure')
        node.trigger_activate()
    return node


def participant() -> Node:
    """Create this process's DDS participant now, with a hidden node of no endpoints (rmw creates
    it with the first node), so that the lock of creating_participant (one at a time on a host)
    is held for that alone, not for a node's whole build. No global arguments: a remapped
    node name would otherwise be taken twice."""
    return rclpy.create_node(f'_participant_{os.getpid()}', use_global_arguments=False,
                             start_parameter_services=False, enable_rosout=False)


def run_node(name: str, build: Callable[[], Node], argv: list[str] | None = None) -> int:
    transport = configure_transport()
    try:
        rclpy.init(args=argv if argv is not None else sys.argv,
                   signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # noqa: BLE001 - rcl reports a bad --params-file this way
        print(f'[FATAL] [{name}]: refusing to start: cannot initialise ROS: {exc}',
              file=sys.stderr)
        return EXIT_BAD_CONFIG
    stopping, asked = threading.Event(), []

    def stop(why: str) -> None:
        asked.append(why)
        stopping.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _: stop(signal.Signals(number).name))
    supervised = follow_supervisor(lambda: stop('its supervisor is gone'))
    # a node that does not stop is sent this before SIGKILL (flywheel.cli.graph.stop_all): its
    # threads' stacks on stderr say where it hung; a node that crashes says where it crashed
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if not faulthandler.is_enabled() and sys.__stderr__ is not None:   # (pytest's own)
        faulthandler.enable(sys.__stderr__, all_threads=True)
    node = executor = None
    try:
        try:
            with creating_participant(rclpy.logging.get_logger(name).warning):
                anchor = participant()
            try:
                node = build()
            finally:
                anchor.destroy_node()     # the node built keeps the participant
        except (FlywheelError, ValueError, ParameterException) as exc:
            rclpy.logging.get_logger(name).fatal(f'refusing to start: {exc}')
            return EXIT_BAD_CONFIG
        node.get_logger().info(f'transport: {transport}')
        if supervised:
            node.get_logger().info(supervised)
        executor = getattr(node, 'make_executor', EventsExecutor)()
        executor.add_node(node)
        # Everything built so far lives as long as the process: keep it out of the collector,
        # so a collection never pauses a callback for long.
        gc.collect()
        gc.freeze()
        try:
            while (not stopping.is_set() and rclpy.ok()
                   and getattr(node, 'exit_code', None) is None):
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        return getattr(node, 'exit_code', None) or 0
    finally:
        if node is not None:
            code = getattr(node, 'exit_code', None)
            why = asked[0] if asked else 'ROS shut down' if code is None else f'exit code {code}'
            node.get_logger().info(f'stopping: {why}')
            on_exit = getattr(node, 'on_process_exit', None)
            if on_exit is not None:
                on_exit()
        # What is left is rclpy's teardown (its DDS entities), which takes ~0.02 s here but
        # hung under `make stress` in 3 of about 250 stops, inside Fast DDS (EventsExecutor.
        # shutdown() twice, destroy_publisher once), after the node had done all it does on
        # the way out; rclpy calls those with the GIL held, so a Python timer might never run.
        # So it is bounded by what needs no GIL: at TEARDOWN_S
        # faulthandler's own thread prints every thread's stack, and the kernel ends the
        # process with SIGALRM, which `flywheel up` reports as a teardown cut short.
        faulthandler.dump_traceback_later(TEARDOWN_S)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, TEARDOWN_S + 0.1)
        began = time.monotonic()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        print(f'[INFO] [{name}]: ROS teardown took {time.monotonic() - began:.2f} s',
              file=sys.stderr, flush=True)
