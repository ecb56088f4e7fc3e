"""The Gate's output process: the only publisher on cmd_vel while the Gate runs.

Why a process and not a thread: in the Gate's process the thread that published cmd_vel shared one
interpreter lock with callbacks decoding a flood, the garbage collector and the executor, and under
CPU load it ran up to half a second late (bench/fail_closed.py --hog). Here the deadline has an
interpreter, a DDS participant and, where the system permits, a real-time priority of its own. It
sleeps until the next tick or the next record from the Gate (on stdin) and does nothing else: it
publishes the command while it is in force, then stop on every tick, starting exactly at the
deadline.

It fails closed: when the Gate goes away (its end of the pipe closes, even on kill -9) it
publishes stop and exits; SIGTERM does the same. SIGINT is ignored: Ctrl-C reaches the Gate, which
ends this process after its own last stop. It tells the Gate it is alive after every publish (the
heartbeat fd), so the Gate notices a frozen output and stops the robot itself.

    python -m flywheel.ros.output_process --topic /cmd_vel --tick 0.02 --heartbeat-fd N \\
        [--stamped] [--priority 10] [--domain 0] [--ros-args ...]
"""
from __future__ import annotations

import argparse
import gc
import os
import select
import signal
import sys
import threading
import time

import rclpy
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from flywheel.enforcement.handoff import BEAT, STOP, Holding
from flywheel.ros import qos
from flywheel.ros.command_output import raise_priority
from flywheel.ros.transport import configure_transport, creating_participant

FINAL_STOPS = 3
FINAL_ACK_S = 1.0


class _Terminated(Exception):
    pass


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, ros = (argv[:argv.index('--ros-args')], argv[argv.index('--ros-args'):]) \
        if '--ros-args' in argv else (argv, [])
    parser = argparse.ArgumentParser(prog='output_process')
    parser.add_argument('--topic', required=True, help='resolved cmd_vel topic')
    parser.add_argument('--tick', type=float, required=True)
    parser.add_argument('--heartbeat-fd', type=int, required=True)
    parser.add_argument('--stamped', action='store_true')
    parser.add_argument('--frame-id', default='base_link')
    parser.add_argument('--priority', type=int, default=0)
    parser.add_argument('--domain', type=int, default=None)
    return parser.parse_args(ours), ros


def fed(gate: int, holding: Holding) -> bool:
    """Feed ``holding`` everything the Gate has written; False once the Gate is gone (end of
    file). Read to the end, not one chunk: an approval the Gate wrote just before it was killed
    is then never published once its death can be seen (under `make stress` a moving command
    went out after the kill, before the stop)."""
    while True:
        try:
            data = os.read(gate, 64 * 1024)
        except BlockingIOError:
            return True
        if not data:
            return False
        holding.feed(data)


def main(argv: list[str] | None = None) -> int:
    args, ros_args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def terminate(*_):
        raise _Terminated
    signal.signal(signal.SIGTERM, terminate)
    scheduling = raise_priority(args.priority)     # granted already when the Gate started it
    configure_transport()
    context = rclpy.Context()
    rclpy.init(args=['output_process'] + ros_args, context=context, domain_id=args.domain,
               signal_handler_options=SignalHandlerOptions.NO)
    with creating_participant(rclpy.logging.get_logger('gate_output').warning):
        node = rclpy.create_node('gate_output', context=context, start_parameter_services=False)
    node.get_logger().info(f'publishing {args.topic} ({scheduling})')
    if node.get_parameter('use_sim_time').value:       # stamps in sim time: /clock must be read
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True, name='clock').start()
    publisher = node.create_publisher(TwistStamped if args.stamped else Twist, args.topic,
                                      qos.COMMAND)
    clock = node.get_clock()

    def publish(command_at) -> int:
        """Publish ``command_at(now)``; returns now (monotonic ns). The stamp is read before the
        deadline is checked, so a command is never stamped later than the moment it was found
        in force."""
        stamp = clock.now() if args.stamped else None
        now = time.monotonic_ns()
        twist = Twist()
        twist.linear.x, twist.angular.z = command_at(now)
        if stamp is not None:
            msg = TwistStamped(twist=twist)
            msg.header.stamp = stamp.to_msg()
            msg.header.frame_id = args.frame_id
            publisher.publish(msg)
        else:
            publisher.publish(twist)
        return now

    beat = args.heartbeat_fd
    os.set_blocking(beat, False)
    gate = sys.stdin.fileno()
    os.set_blocking(gate, False)
    holding = Holding()
    gc.collect()
    gc.freeze()
    try:
        while True:
            now = publish(holding.command_at)
            try:
                os.write(beat, BEAT.pack(now))
            except BlockingIOError:         # the Gate is not reading (frozen): it will see
                pass
            except BrokenPipeError:
                break
            ready, _, _ = select.select([gate], [], [], holding.wait_s(now, args.tick))
            if ready and not fed(gate, holding):      # the Gate exited or was killed
                break
    except _Terminated:
        pass
    finally:
        for _ in range(FINAL_STOPS):
            publish(lambda _: STOP)
        # A stop lost on the wire is repaired only while this writer lives: wait for the acks.
        acked = publisher.wait_for_all_acked(Duration(seconds=FINAL_ACK_S))
        node.get_logger().info('stop published' + ('' if acked else
                                                   f', not acknowledged within {FINAL_ACK_S} s')
                               + '; output process exits')
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
