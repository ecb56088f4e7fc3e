"""CommandOutput: the only thing that publishes on cmd_vel, on its own thread and steady clock.

The Gate's deadline must not wait behind anything: not a slow or flooded callback, not a decision
being published to a dead audit, not the executor. This thread reads the Gate's current approval
(one atomic reference to an immutable Approval, which carries its own steady-clock deadline) and
publishes the approved command at once and then every tick while it is in force, and stop on
every tick while nothing is, starting exactly at the deadline. It never logs and never takes a lock the executor holds.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

STOP = (0.0, 0.0)


class CommandOutput:
    def __init__(self, approval: Callable[[], object], publish: Callable[[tuple, int], None],
                 ros_now_ns: Callable[[], int], tick_s: float):
        """``approval()`` returns the Gate's Approval or None; ``publish(command, stamp_ns)``
        sends one command stamped ``stamp_ns`` (ROS time, now)."""
        self._approval = approval
        self._publish = publish
        self._ros_now_ns = ros_now_ns
        self._tick_s = tick_s
        self._wake = threading.Event()
        self._stopping = False
        self.published_stops = 0
        self.published_commands = 0
        self._thread = threading.Thread(target=self._run, name='cmd_vel-output', daemon=True)

    def start(self) -> 'CommandOutput':
        self._thread.start()
        return self

    def wake(self) -> None:
        """A new approval or a withdrawal: publish it now, not at the next tick."""
        self._wake.set()

    def stop(self, final_stops: int = 3) -> None:
        """Stop the thread, then publish stop a few times (the last word on cmd_vel)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=2.0)
        for _ in range(final_stops):
            self._publish(STOP, self._ros_now_ns())

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = time.monotonic_ns()
            approval = self._approval()
            if approval is not None and approval.in_force(now):
                self._publish(approval.command, self._ros_now_ns())
                self.published_commands += 1
                timeout = min(self._tick_s, (approval.until_steady_ns - now) * 1e-9)
            else:
                self._publish(STOP, self._ros_now_ns())
                self.published_stops += 1
                timeout = self._tick_s
            self._wake.wait(timeout)
