"""CommandOutput: the Gate's end of its output process (flywheel/ros/output_process.py), which is
the only publisher on cmd_vel.

The Gate hands over each change of its approval (command, steady-clock deadline) as one record on
a pipe; writing it never blocks (a full pipe keeps the record for the next tick). The deadline is
then kept by the output process alone, so nothing in the Gate's process (a flood, GC, a blocked
publisher, SIGSTOP) can keep a command on cmd_vel past it.

Until the output process has published for the first time, and whenever it dies or stops telling
it is alive for ``watchdog_s``, this side publishes stop on the Gate's own cmd_vel publisher every
tick. A dead or silent one is killed (by its PID) and replaced; the Gate withdraws its approval,
so a command must be approved again before anything moves.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable

from flywheel.enforcement.handoff import BEAT, last_beat, record

RESTART_AFTER_S = 1.0        # at most one new output process a second
# from exec to its first publish: imports rclpy, then waits its turn to create a DDS participant
# (transport.creating_participant, up to 30 s while a fleet comes up); the Gate publishes stop
# itself meanwhile, so waiting longer never lets anything move
STARTUP_S = 45.0
BEAT_READ = BEAT.size * 1024


def raise_priority(priority: int, pid: int = 0) -> str:
    """Ask for SCHED_FIFO at ``priority`` for process ``pid`` (0: this one; inherited by the
    threads it creates after); an account of what was granted, for the log."""
    if priority <= 0:
        return 'normal scheduling (output_priority 0)'
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as exc:
        return (f'normal scheduling: SCHED_FIFO {priority} refused ({exc.strerror}); grant the '
                'robot user an rtprio limit or CAP_SYS_NICE so the stop never waits for CPU')
    return f'SCHED_FIFO priority {priority}'


class CommandOutput:
    def __init__(self, argv: list[str], publish_stop: Callable[[], None],
                 watchdog_s: float, log: Callable[[str], None], priority: int = 0):
        """``argv``: the output process's arguments after ``python -m
        flywheel.ros.output_process`` (the heartbeat fd is added here); ``publish_stop()``: stop
        on the Gate's own publisher, for when the output process cannot; ``priority``: its
        SCHED_FIFO priority (0: none)."""
        self._argv = argv
        self._priority = priority
        self._publish_stop = publish_stop
        self._watchdog_ns = int(watchdog_s * 1e9)
        self._log = log
        self._process: subprocess.Popen | None = None
        self._pipe = self._beats = -1
        self._sent: object = None
        self._pending = b''
        self._beat_ns = 0
        self._started_ns = 0
        self.alive = False       # it has published since it started
        self._problem: str | None = None     # why it is to be replaced
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> 'CommandOutput':
        beats, beat_w = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, '-m', 'flywheel.ros.output_process', '--heartbeat-fd', str(beat_w)]
            + self._argv, stdin=subprocess.PIPE, pass_fds=(beat_w,))
        # its priority from the start, not after its imports: on a busy host (a fleet coming up
        # on two cores) those alone took the output process past STARTUP_S at normal priority
        raise_priority(self._priority, self._process.pid)
        os.close(beat_w)
        self._beats = beats
        os.set_blocking(beats, False)
        self._pipe = self._process.stdin.fileno()
        os.set_blocking(self._pipe, False)
        self._sent, self._pending = None, b''
        self._started_ns = self._beat_ns = time.monotonic_ns()
        self.alive, self._problem = False, None
        return self

    def hand_off(self, approval) -> None:
        """Send ``approval`` (an enforcement.gate.Approval, or None for stop) if it is not the
        one last sent."""
        if approval is self._sent:
            return
        self._sent = approval
        self._pending = (record(approval.command, approval.until_steady_ns)
                         if approval is not None else record(None))
        self._flush()

    def check(self, now_ns: int) -> str | None:
        """On every Gate tick: retry a record the pipe had no room for, and watch the output
        process. Returns why it is being replaced (the Gate then withdraws its approval)."""
        self._flush()
        problem = self._problem or self._diagnose(now_ns)
        if problem is None:
            if not self.alive:
                self._publish_stop()      # still starting: nobody else says stop
            return None
        self._problem, self.alive = problem, False
        self._publish_stop()
        if now_ns - self._started_ns >= RESTART_AFTER_S * 1e9:
            self._log(f'{problem}: stop published by the gate itself; starting a new one')
            self._end(kill=True)
            self.restarts += 1
            self.start()
        return problem

    def _diagnose(self, now_ns: int) -> str | None:
        try:
            beat = last_beat(os.read(self._beats, BEAT_READ), 0)
            if beat:
                self._beat_ns, self.alive = beat, True
        except BlockingIOError:
            pass
        code = self._process.poll()
        if code is not None:
            return f'output process exited ({code})'
        if not self.alive:
            if now_ns - self._started_ns <= STARTUP_S * 1e9:
                return None
            return f'output process did not start within {STARTUP_S:.0f} s'
        if now_ns - self._beat_ns > self._watchdog_ns:
            return f'output process silent for {(now_ns - self._beat_ns) / 1e6:.0f} ms'
        return None

    def stop(self, final_stops: int = 3) -> None:
        """End the output process (it publishes its own last stop), then publish stop here too:
        the last word on cmd_vel."""
        self._end(kill=False)
        for _ in range(final_stops):
            self._publish_stop()

    def _flush(self) -> None:
        if not self._pending:
            return
        try:
            os.write(self._pipe, self._pending)
            self._pending = b''
        except BlockingIOError:
            pass                 # frozen reader: retried on the next tick, watched by check()
        except BrokenPipeError:
            pass                 # dead reader: check() replaces it

    def _end(self, kill: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if kill and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        try:
            process.stdin.close()    # EOF: it publishes stop and exits
        except OSError:
            pass
        try:
            process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=2.0)
        os.close(self._beats)

