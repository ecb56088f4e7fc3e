"""The hand-off from the Gate to its output process: which command may be on cmd_vel, and until
when (CLOCK_MONOTONIC, shared by both processes).

The Gate writes one fixed-size record per change; the output process keeps the last whole record
it read. A record that does not make sense (a non-finite value, a deadline of 0) means stop: the
output never has to guess.
"""
from __future__ import annotations

import math
import struct

STOP = (0.0, 0.0)
RECORD = struct.Struct('<ddq')       # v (m/s), w (rad/s), in force until (monotonic ns; 0: stop)
# The output process says it is alive: the monotonic ns of its latest publish.
BEAT = struct.Struct('<q')


def record(command: tuple[float, float] | None, until_ns: int = 0) -> bytes:
    """The record for ``command`` in force until ``until_ns``; None: stop now."""
    if command is None:
        return RECORD.pack(0.0, 0.0, 0)
    return RECORD.pack(float(command[0]), float(command[1]), int(until_ns))


class Holding:
    """The output process's side: the command in force, from the records read so far."""

    def __init__(self):
        self._partial = b''
        self.command = STOP
        self.until_ns = 0

    def feed(self, data: bytes) -> None:
        """Take bytes as read from the pipe (records may arrive split); the last whole record
        decides."""
        data = self._partial + data
        whole = len(data) - len(data) % RECORD.size
        self._partial = data[whole:]
        if whole:
            v, w, until_ns = RECORD.unpack_from(data, whole - RECORD.size)
            if until_ns > 0 and math.isfinite(v) and math.isfinite(w):
                self.command, self.until_ns = (v, w), until_ns
            else:
                self.command, self.until_ns = STOP, 0

    def command_at(self, now_ns: int) -> tuple[float, float]:
        """What to publish at ``now_ns``: the command while in force, else stop."""
        return self.command if now_ns < self.until_ns else STOP

    def wait_s(self, now_ns: int, tick_s: float) -> float:
        """How long to sleep before publishing again: a tick, or less, to stop exactly at the
        deadline."""
        if now_ns < self.until_ns:
            return min(tick_s, (self.until_ns - now_ns) * 1e-9)
        return tick_s


def last_beat(data: bytes, before: int) -> int:
    """The latest heartbeat among whole beats in ``data`` (``before`` if none)."""
    whole = len(data) - len(data) % BEAT.size
    return BEAT.unpack_from(data, whole - BEAT.size)[0] if whole else before
