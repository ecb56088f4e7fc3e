"""The baseline of bench/end_to_end.py: the Oracle's and the Gate's hops, doing as little as a
Python node can.

    python bench/relay.py oracle|gate --ros-args -r __ns:=/baseline

`oracle` answers every Proposal with a tiny SafetySignals naming it; `gate` holds each proposal's
command and publishes it as a Twist when signals naming that proposal arrive (or at once, if they
overtook it, as the real Gate allows).

Why this is the fairest baseline: the same three processes and the same hops as the real chain
(the proposal goes to both the Oracle and the Gate; signals from Oracle to Gate; the command to
cmd_vel), the same message types, QoS and transport (UDP only, configure_transport), and the
fastest executor rclpy has (rclpy.experimental.EventsExecutor, as the real nodes use). Nothing is
converted: the subscriptions take raw CDR bytes, the two ids and the command are read from fixed
offsets with struct, the replies are published as ready-made bytes (the SafetySignals bytes are
built once per id length, the Twist is 52 packed bytes). What remains is DDS delivery and rclpy's
dispatch: the floor for any Python node in this topology, not a strawman slowed by our own work.
"""
from __future__ import annotations

import gc
import struct
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.experimental import EventsExecutor
from rclpy.serialization import serialize_message

from alignment_flywheel.msg import Proposal, SafetySignals
from flywheel.ros import qos, topics
from flywheel.ros.transport import configure_transport
from geometry_msgs.msg import Twist

CDR_LE = b'\x00\x01\x00\x00'
POINT_BYTES = 112


def _string(raw: bytes, pos: int) -> tuple[bytes, int]:
    """A CDR string at pos (aligned to 4 from the CDR body); returns (bytes, end)."""
    pos += (-(pos - 4)) % 4
    n = struct.unpack_from('<I', raw, pos)[0]
    return raw[pos + 4:pos + 3 + n], pos + 4 + n


def message_id(raw: bytes) -> tuple[bytes, int]:
    """The first string after the header (Proposal and SafetySignals: proposal_id)."""
    _, pos = _string(raw, 12)          # header: stamp (8 bytes), frame_id
    return _string(raw, pos)


def proposal_command(raw: bytes, pos: int) -> tuple[float, float]:
    """The command (linear.x, angular.z) of the Proposal whose proposal_id ends at pos."""
    _, pos = _string(raw, pos)         # proposer_id
    pos += (-(pos - 4)) % 8 + 16       # epoch, seq
    n = struct.unpack_from('<I', raw, pos)[0]
    pos += 4
    if n:
        pos += (-(pos - 4)) % 8 + n * POINT_BYTES
    pos += (-(pos - 4)) % 8
    v, _, _, _, _, w = struct.unpack_from('<6d', raw, pos)
    return v, w


class TinySignals:
    """The bytes of a SafetySignals naming a proposal and nothing else."""

    def __init__(self):
        self._parts: dict[int, tuple[bytes, bytes]] = {}

    def __call__(self, proposal_id: bytes) -> bytes:
        parts = self._parts.get(len(proposal_id))
        if parts is None:
            marker = b'\x7f' * len(proposal_id)
            raw = serialize_message(SafetySignals(proposal_id=marker.decode()))
            at = raw.index(marker)
            parts = self._parts[len(proposal_id)] = (raw[:at], raw[at + len(marker):])
        return parts[0] + proposal_id + parts[1]


def build(node, role: str) -> None:
    if role == 'oracle':
        out = node.create_publisher(SafetySignals, topics.SAFETY_SIGNALS, qos.STREAM)
        tiny = TinySignals()
        node.create_subscription(Proposal, topics.PROPOSALS,
                                 lambda raw: out.publish(tiny(message_id(raw)[0])), qos.INPUT,
                                 raw=True)
        return
    held: dict[bytes, bytes] = {}
    early: dict[bytes, None] = {}     # signals that overtook their proposal (as the Gate allows)
    out = node.create_publisher(Twist, topics.CMD_VEL, qos.COMMAND)

    def on_proposal(raw: bytes) -> None:
        pid, end = message_id(raw)
        command = CDR_LE + struct.pack('<6d', *_twist(proposal_command(raw, end)))
        if early.pop(pid, 0) is None:
            out.publish(command)
            return
        held[pid] = command
        if len(held) > 1000:
            held.pop(next(iter(held)))

    def on_signals(raw: bytes) -> None:
        pid = message_id(raw)[0]
        command = held.pop(pid, None)
        if command is not None:
            out.publish(command)
            return
        early[pid] = None
        if len(early) > 1000:
            early.pop(next(iter(early)))

    node.create_subscription(Proposal, topics.PROPOSALS, on_proposal, qos.INPUT, raw=True)
    node.create_subscription(SafetySignals, topics.SAFETY_SIGNALS, on_signals, qos.INPUT,
                             raw=True)


def _twist(command: tuple[float, float]) -> tuple:
    return command[0], 0.0, 0.0, 0.0, 0.0, command[1]


def main() -> int:
    role = sys.argv[1]
    if role not in ('oracle', 'gate'):
        print('usage: relay.py oracle|gate [--ros-args ...]', file=sys.stderr)
        return 2
    configure_transport()
    rclpy.init(args=sys.argv)
    node = rclpy.create_node(f'relay_{role}')
    build(node, role)
    executor = EventsExecutor()
    executor.add_node(node)
    gc.collect()
    gc.freeze()
    try:
        # as flywheel.ros.run does: EventsExecutor.spin() busy-loops holding the GIL in this
        # rclpy (a signal handler never runs), spin_once with a timeout waits
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
