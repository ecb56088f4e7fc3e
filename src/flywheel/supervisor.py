"""A node started by `flywheel up` (or any flywheel.cli.graph.Graph) stops when the process that
started it dies, even by kill -9, instead of running on headless (no rclpy here).

Why: the nodes run in their own sessions (a Ctrl-C reaches only `flywheel up`, which stops them
in order), so nothing else ends them. Under `make stress` a test's clean-up killed `flywheel up`
with SIGKILL, and its whole graph ran on in the test domain: its inactive Gate answered every
later test's proposals beside the test's own Gate. The OOM killer would do the same on a robot.
The kernel sends the node SIGINT when its parent dies (prctl PR_SET_PDEATHSIG), which it handles
as a Ctrl-C: the Gate says stop on its way out.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Callable

ENV = 'FLYWHEEL_SUPERVISOR_PID'
PR_SET_PDEATHSIG = 1


def supervised_env(env: dict[str, str] | None) -> dict[str, str]:
    """``env`` (default: this process's) for a node that must stop when this process dies. The
    kernel ties that to the thread that starts the node: start it from the main thread."""
    return {**(os.environ if env is None else env), ENV: str(os.getpid())}


def follow_supervisor(stop: Callable[[], None]) -> str | None:
    """Have SIGINT sent to this process when the supervisor named in the environment dies; call
    ``stop`` now if it died already. Call once the SIGINT handler is installed. The variable is
    taken out of the environment, so this process's own children do not inherit it. Returns what
    was done, for the log (None when not supervised)."""
    supervisor = os.environ.pop(ENV, None)
    if supervisor is None:
        return None
    if not sys.platform.startswith('linux'):
        return f'supervisor {supervisor}: not followed (PR_SET_PDEATHSIG is Linux only)'
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0) != 0:
        return f'supervisor {supervisor}: not followed ({os.strerror(ctypes.get_errno())})'
    if str(os.getppid()) != supervisor:      # it died before the kernel was told
        stop()
        return f'supervisor {supervisor} is gone: stopping'
    return f'stops when its supervisor (pid {supervisor}) dies'
